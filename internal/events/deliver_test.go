package events_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestNewDeliverer(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		secret    tokens.Secret
	}{
		{"NoSecret", "https://example.com/hooks", ""},
		{"BadSecret", "https://example.com/hooks", "whsec_c2hvcnQ="},
		{"NotHTTP", "ftp://example.com/hooks", testSecret},
		{"NoHost", "https:///hooks", testSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.NewDeliverer(newFakeStore(), tc.url, tc.secret)
			if tokens.ErrorCode(err) != tokens.EINVALID {
				t.Fatalf("NewDeliverer = %v, want EINVALID", err)
			}
			if tc.secret != "" && strings.Contains(err.Error(), strings.TrimPrefix(tc.secret.Reveal(), "whsec_")) {
				t.Fatalf("error %q shows the secret", err)
			}
		})
	}
}

func TestDeliverer_Delivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		e := event("parent-1", tokens.EventLinked)
		e.Data = map[string]any{"region": "NA", "relinked": false}
		store.add(e)
		d, c := newTestDeliverer(t, store, rc)
		run(t, d)
		waitFor(t, time.Second, func() bool { return store.get(e.ID).State == events.StateDelivered })

		got := rc.requests()
		if len(got) != 1 {
			t.Fatalf("received %d requests, want 1", len(got))
		}
		verify(t, testSecret, got[0])
		want, _ := events.MarshalEvent(e)
		if string(got[0].body) != string(want) {
			t.Errorf("body = %s, want %s", got[0].body, want)
		}
		if w := store.get(e.ID); w.Attempts != 1 || w.LastError != "" {
			t.Errorf("stored attempts %d, last error %q; want 1, none", w.Attempts, w.LastError)
		}
		if delivered, retried, givenUp := c.counts(); delivered != 1 || retried != 0 || givenUp != 0 {
			t.Errorf("observed %d delivered, %d retried, %d given up", delivered, retried, givenUp)
		}
	})
}

func TestDeliverer_Retries(t *testing.T) {
	t.Run("Backoff", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store, rc := newFakeStore(), newReceiver(t)
			rc.answer = func(r *http.Request, n int) (*http.Response, error) {
				if n < 4 {
					return status(r, http.StatusServiceUnavailable, ""), nil
				}
				return status(r, http.StatusOK, ""), nil
			}
			e := event("parent-1", tokens.EventRelinkRequired)
			store.add(e)
			d, c := newTestDeliverer(t, store, rc)
			run(t, d)
			waitFor(t, time.Minute, func() bool { return store.get(e.ID).State == events.StateDelivered })

			got := rc.requests()
			if len(got) != 5 {
				t.Fatalf("received %d requests, want 5", len(got))
			}
			for i := 1; i < len(got); i++ {
				interval := time.Second << (i - 1)
				gap := got[i].at.Sub(got[i-1].at)
				if gap < interval/2 || gap > interval*3/2+20*time.Millisecond {
					t.Errorf("retry %d came %v after the attempt before, want %v ± 50 %%", i, gap, interval)
				}
				if got[i].id != e.ID {
					t.Errorf("retry %d: webhook-id %q, want %q", i, got[i].id, e.ID)
				}
				verify(t, testSecret, got[i])
			}
			if w := store.get(e.ID); w.Attempts != 5 {
				t.Errorf("stored attempts %d, want 5", w.Attempts)
			}
			if delivered, retried, _ := c.counts(); delivered != 1 || retried != 4 {
				t.Errorf("observed %d delivered, %d retried; want 1, 4", delivered, retried)
			}
		})
	})
	t.Run("RetryAfterFromAnswer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store, rc := newFakeStore(), newReceiver(t)
			rc.answer = func(r *http.Request, n int) (*http.Response, error) {
				if n == 0 {
					time.Sleep(5 * time.Second) // the answer arrives 5 s after the request
					return status(r, http.StatusTooManyRequests, "120"), nil
				}
				return status(r, http.StatusNoContent, ""), nil
			}
			e := event("parent-1", tokens.EventDeleted)
			store.add(e)
			d, _ := newTestDeliverer(t, store, rc)
			run(t, d)
			waitFor(t, 5*time.Minute, func() bool { return store.get(e.ID).State == events.StateDelivered })
			got := rc.requests()
			if gap := got[1].at.Sub(got[0].at); gap < 125*time.Second || gap > 126*time.Second {
				t.Errorf("retry came %v after the first request, want 5 s + Retry-After 120 s", gap)
			}
		})
	})
	t.Run("NoAnswer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store, rc := newFakeStore(), newReceiver(t)
			rc.answer = func(r *http.Request, n int) (*http.Response, error) {
				if n == 0 {
					return hang(r)
				}
				return status(r, http.StatusOK, ""), nil
			}
			e := event("parent-1", tokens.EventDeleted)
			store.add(e)
			d, _ := newTestDeliverer(t, store, rc)
			run(t, d)
			waitFor(t, time.Minute, func() bool { return store.get(e.ID).Attempts == 1 })
			if w := store.get(e.ID); w.State != events.StatePending || !strings.Contains(w.LastError, "no answer within 10s") {
				t.Errorf("after a hang: %v, last error %q", w.State, w.LastError)
			}
			waitFor(t, time.Minute, func() bool { return store.get(e.ID).State == events.StateDelivered })
			if got := rc.requests(); got[1].at.Sub(got[0].at) < events.SendTimeout {
				t.Errorf("retry came %v after a request that hung, want at least %v", got[1].at.Sub(got[0].at), events.SendTimeout)
			}
		})
	})
	t.Run("Redirect", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store, rc := newFakeStore(), newReceiver(t)
			rc.answer = func(r *http.Request, n int) (*http.Response, error) {
				resp := status(r, http.StatusFound, "")
				resp.Header.Set("Location", "https://elsewhere.example/")
				return resp, nil
			}
			e := event("parent-1", tokens.EventDeleted)
			store.add(e)
			d, _ := newTestDeliverer(t, store, rc)
			run(t, d)
			waitFor(t, time.Minute, func() bool { return store.get(e.ID).Attempts == 1 })
			if w := store.get(e.ID); w.State != events.StatePending || w.LastError != "the receiver answered 302" {
				t.Errorf("after a redirect: %v, last error %q", w.State, w.LastError)
			}
			for _, r := range rc.requests() {
				if strings.Contains(string(r.body), "elsewhere") || r.id != e.ID {
					t.Errorf("followed the redirect: %+v", r)
				}
			}
		})
	})
}

func TestDeliverer_Deadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		rc.answer = func(r *http.Request, _ int) (*http.Response, error) {
			return status(r, http.StatusInternalServerError, ""), nil
		}
		e := event("parent-1", tokens.EventRelinkRequired)
		store.add(e)
		d, c := newTestDeliverer(t, store, rc)
		d.Deadline = time.Minute
		run(t, d)
		waitFor(t, 2*time.Minute, func() bool { return store.get(e.ID).State == events.StateGivenUp })

		w := store.get(e.ID)
		if !strings.Contains(w.LastError, "deadline") || !strings.Contains(w.LastError, "the receiver answered 500") {
			t.Errorf("last error %q, want the deadline and the receiver's answer", w.LastError)
		}
		got := rc.requests()
		if len(got) < 4 || w.Attempts != len(got) {
			t.Errorf("%d requests, %d attempts stored; want several, equal", len(got), w.Attempts)
		}
		if last := got[len(got)-1].at; last.Sub(e.OccurredAt) >= time.Minute {
			t.Errorf("an attempt %v after the event, past the deadline", last.Sub(e.OccurredAt))
		}
		time.Sleep(time.Hour)
		if n := len(rc.requests()); n != len(got) {
			t.Errorf("%d requests after giving up", n-len(got))
		}
		if _, _, givenUp := c.counts(); givenUp != 1 {
			t.Errorf("observed %d given up, want 1", givenUp)
		}
	})
}

// TestDeliverer_Shutdown stops the deliverer while the receiver takes its
// time to answer: the attempt runs to its answer and is stored delivered, so
// the next process does not send it again (exactly once without a crash).
func TestDeliverer_Shutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		rc.answer = func(r *http.Request, _ int) (*http.Response, error) {
			select { // the receiver at work, while the request lasts
			case <-time.After(2 * time.Second):
				return status(r, http.StatusNoContent, ""), nil
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
		e := event("parent-1", tokens.EventLinked)
		store.add(e)
		d, _ := newTestDeliverer(t, store, rc)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		waitFor(t, time.Second, func() bool { return len(rc.requests()) == 1 })
		cancel()
		<-done

		if w := store.get(e.ID); w.State != events.StateDelivered || w.Attempts != 1 {
			t.Fatalf("after shutdown: state %v, %d attempts; want delivered, 1", w.State, w.Attempts)
		}
		next, _ := newTestDeliverer(t, store, rc)
		run(t, next)
		time.Sleep(time.Hour)
		if n := len(rc.requests()); n != 1 {
			t.Errorf("%d requests, want 1: the next process sent it again", n)
		}
	})
}

// TestDeliverer_IndexLag: the webhook of an event just before another, not
// yet listed by a lagging index when the deliverer looks, is still sent first
// when IndexLag covers the lag; without it, it is overtaken.
func TestDeliverer_IndexLag(t *testing.T) {
	for _, tt := range []struct {
		name     string
		indexLag time.Duration
		want     []int // the events, by their order of occurrence
	}{
		{"Overtaken", 0, []int{1, 0}},
		{"HeldBack", time.Second, []int{0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store, rc := newFakeStore(), newReceiver(t)
				first := event("parent-1", tokens.EventLinked)
				time.Sleep(time.Millisecond)
				second := event("parent-1", tokens.EventRelinkRequired)
				store.add(first, second)
				store.hidden = map[string]time.Time{first.ID: time.Now().Add(500 * time.Millisecond)}
				start := time.Now()
				d, _ := newTestDeliverer(t, store, rc)
				d.IndexLag = tt.indexLag
				// Polls far apart: a wake that does not come costs seconds.
				d.PollInterval = 2 * time.Second
				run(t, d)
				// With IndexLag, each oldest waits it from its own listing: the
				// second event's first, the first's, then the second's again
				// (the deliverer sees only each user's oldest). Without, the
				// first is found by the next poll.
				waitFor(t, 3500*time.Millisecond, func() bool { return len(rc.requests()) == 2 })
				if end := time.Since(start); end < 3*tt.indexLag {
					t.Errorf("both sent within %v, want the waits of IndexLag %v", end, tt.indexLag)
				}

				ids := []string{first.ID, second.ID}
				got := rc.requests()
				if got[0].id != ids[tt.want[0]] || got[1].id != ids[tt.want[1]] {
					t.Errorf("sent %s then %s, want events %v in that order", got[0].id, got[1].id, tt.want)
				}
			})
		})
	}
}

func TestDeliverer_Order(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		var ids []string
		for _, typ := range []tokens.EventType{tokens.EventLinked, tokens.EventRelinkRequired, tokens.EventLinked, tokens.EventDeleted} {
			e := event("parent-1", typ)
			store.add(e)
			ids = append(ids, e.ID)
			time.Sleep(time.Millisecond)
		}
		failures := map[string]int{ids[0]: 2, ids[2]: 1}
		rc.answer = func(r *http.Request, _ int) (*http.Response, error) {
			id := r.Header.Get("webhook-id")
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if failures[id] > 0 {
				failures[id]--
				return status(r, http.StatusBadGateway, ""), nil
			}
			return status(r, http.StatusOK, ""), nil
		}
		d, _ := newTestDeliverer(t, store, rc)
		d.Concurrency = 4
		run(t, d)
		waitFor(t, time.Minute, func() bool { return store.get(ids[3]).State == events.StateDelivered })

		var order []string
		for _, r := range rc.requests() {
			order = append(order, r.id)
		}
		want := []string{ids[0], ids[0], ids[0], ids[1], ids[2], ids[2], ids[3]}
		if strings.Join(order, " ") != strings.Join(want, " ") {
			t.Errorf("received\n%v\nwant\n%v", order, want)
		}
		if n := rc.maxInFlight["parent-1"]; n != 1 {
			t.Errorf("%d events of the user in flight at once, want 1", n)
		}
	})
}

func TestDeliverer_Fair(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		slow := event("slow-parent", tokens.EventLinked)
		store.add(slow)
		var fast []tokens.Event
		for range 5 {
			time.Sleep(time.Millisecond)
			e := event("fast-parent", tokens.EventLinked)
			store.add(e)
			fast = append(fast, e)
		}
		rc.answer = func(r *http.Request, _ int) (*http.Response, error) {
			if r.Header.Get("webhook-id") == slow.ID {
				return hang(r)
			}
			return status(r, http.StatusOK, ""), nil
		}
		start := time.Now()
		d, _ := newTestDeliverer(t, store, rc)
		d.Concurrency = 2
		run(t, d)
		waitFor(t, time.Minute, func() bool { return store.get(fast[4].ID).State == events.StateDelivered })
		if took := time.Since(start); took >= events.SendTimeout {
			t.Errorf("the other user's events took %v behind one that hangs", took)
		}
	})
}

func TestDeliverer_ClaimedElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		e := event("parent-1", tokens.EventLinked)
		store.add(e)
		if ok, _ := store.ClaimWebhooks(context.Background(), "parent-1", "other-instance", time.Now(), time.Now().Add(time.Minute)); !ok {
			t.Fatal("claim refused")
		}
		d, _ := newTestDeliverer(t, store, rc)
		run(t, d)
		time.Sleep(59 * time.Second)
		if n := len(rc.requests()); n != 0 {
			t.Fatalf("%d requests while another instance holds the user", n)
		}
		waitFor(t, time.Minute, func() bool { return store.get(e.ID).State == events.StateDelivered })
	})
}

func TestDeliverer_SharedStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		rc.answer = func(r *http.Request, _ int) (*http.Response, error) {
			time.Sleep(50 * time.Millisecond)
			return status(r, http.StatusOK, ""), nil
		}
		var all []tokens.Event
		for i := range 20 {
			e := event("parent-"+string(rune('a'+i%5)), tokens.EventLinked)
			store.add(e)
			all = append(all, e)
			time.Sleep(time.Millisecond)
		}
		for range 3 {
			d, _ := newTestDeliverer(t, store, rc)
			run(t, d)
		}
		waitFor(t, time.Minute, func() bool {
			for _, e := range all {
				if store.get(e.ID).State != events.StateDelivered {
					return false
				}
			}
			return true
		})
		seen := map[string]int{}
		last := map[string]time.Time{}
		for _, r := range rc.requests() {
			seen[r.id]++
			user := r.event["user_id"].(string)
			at, _ := time.Parse(time.RFC3339Nano, r.event["occurred_at"].(string))
			if at.Before(last[user]) {
				t.Errorf("%s: event of %v after one of %v", user, at, last[user])
			}
			last[user] = at
		}
		for _, e := range all {
			if seen[e.ID] != 1 {
				t.Errorf("event %s sent %d times, want once", e.ID, seen[e.ID])
			}
		}
	})
}

func TestDeliverer_Removed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, rc := newFakeStore(), newReceiver(t)
		e := event("parent-1", tokens.EventLinked)
		store.add(e)
		store.mu.Lock()
		delete(store.webhooks, e.ID) // retention removed it after DueWebhooks read it
		store.mu.Unlock()
		d, _ := newTestDeliverer(t, store, rc)
		run(t, d)
		time.Sleep(time.Second)
		if n := len(rc.requests()); n != 0 {
			t.Fatalf("%d requests of a removed event", n)
		}
	})
}
