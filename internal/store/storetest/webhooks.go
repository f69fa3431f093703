package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// WebhookStore is what RunWebhooks checks: a tokens.Store and
// tokens.EventStore whose events with Notify set enter its webhook outbox
// (events.Store).
type WebhookStore interface {
	tokens.Store
	tokens.EventStore
	events.Store
}

// RunWebhooks runs the conformance suite of the webhook outbox (events.Store)
// against the stores that open returns, new and empty for each subtest.
//
// Beyond the doc comments of events.Store, the suite pins down:
//
//   - Only events with Notify set enter the outbox, PENDING, with no attempt
//     made, a version set, and the event as stored.
//   - DueWebhooks answers the users oldest first (by their oldest webhook's
//     OccurredAt, then ID), so that a full page never starves a user.
//   - PutWebhook writes Attempts, NextAttemptAt and LastError and the state,
//     not the event; a webhook written DELIVERED or GIVEN_UP is no longer due
//     and the user's next one is.
//   - The store compares the times ClaimWebhooks is given, never its own
//     clock: a claim that ends at until is held at now == until, and free at
//     any now after it. Of concurrent claims of a free user exactly one holds.
//   - WebhookBacklog counts what DueWebhooks could return over all time.
//   - A context that has ended is an EUNAVAILABLE error from every method.
func RunWebhooks(t *testing.T, open func(t *testing.T) WebhookStore) {
	t.Helper()
	far := eventT0.Add(1000 * time.Hour)

	t.Run("CreatedWithTheChange", func(t *testing.T) {
		s := open(t)
		quiet := NewTestEvent(tokens.EventRefreshed, "u1", eventT0)
		loud := NewTestEvent(tokens.EventLinked, "u1", eventT0.Add(time.Second))
		loud.Notify = true
		if err := s.PutLink(t.Context(), NewLink("u1"), quiet, loud); err != nil {
			t.Fatal(err)
		}
		due := mustDue(t, s, far, 0)
		if len(due) != 1 {
			t.Fatalf("DueWebhooks = %v, want one webhook", webhookIDs(due))
		}
		w := due[0]
		if diff := cmp.Diff(loud, w.Event); diff != "" {
			t.Errorf("webhook event (-want +got):\n%s", diff)
		}
		if w.State != events.StatePending || w.Attempts != 0 || !w.NextAttemptAt.IsZero() || w.LastError != "" || w.Version == 0 {
			t.Errorf("new webhook = %+v, want PENDING, no attempt, a version", *w)
		}
		deleted := NewTestEvent(tokens.EventDeleted, "u2", eventT0)
		deleted.Notify = true
		MustPut(t, s, NewLink("u2"))
		if err := s.DeleteLink(t.Context(), "u2", deleted); err != nil {
			t.Fatal(err)
		}
		assertDueWebhooks(t, s, far, 0, deleted.ID, loud.ID)
	})

	t.Run("NotCreatedWithoutTheChange", func(t *testing.T) {
		s := open(t)
		link := NewLink("u1")
		MustPut(t, s, link)
		stale := clone(link)
		MustPut(t, s, link)
		ev := NewTestEvent(tokens.EventRelinkRequired, "u1", eventT0)
		ev.Notify = true
		if err := s.PutLink(t.Context(), stale, ev); !errors.Is(err, tokens.ErrVersionConflict) {
			t.Fatalf("PutLink(stale) error = %v, want ErrVersionConflict", err)
		}
		if err := s.DeleteLink(t.Context(), "nobody", ev); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("DeleteLink(missing) error = %v, want ErrLinkNotFound", err)
		}
		assertDueWebhooks(t, s, far, 0)
		assertBacklog(t, s, 0, time.Time{})
	})

	t.Run("OldestOfEachUser", func(t *testing.T) {
		s := open(t)
		a1, a2 := notifyEvent("a", eventT0.Add(time.Minute)), notifyEvent("a", eventT0.Add(2*time.Minute))
		b1 := notifyEvent("b", eventT0)
		// Two of one instant: the lower ID is the older.
		c1, c2 := notifyEvent("a#", eventT0.Add(3*time.Minute)), notifyEvent("a#", eventT0.Add(3*time.Minute))
		c1.ID, c2.ID = "evt_1", "evt_2"
		putEvents(t, s, c2, a2, b1, a1, c1)
		assertDueWebhooks(t, s, far, 0, b1.ID, a1.ID, c1.ID)
		assertDueWebhooks(t, s, far, 2, b1.ID, a1.ID)
		assertDueWebhooks(t, s, eventT0.Add(-time.Hour), 0, b1.ID, a1.ID, c1.ID) // never tried: due at once
		assertBacklog(t, s, 5, b1.OccurredAt)
	})

	t.Run("RetryWaits", func(t *testing.T) {
		s := open(t)
		a1, a2 := notifyEvent("a", eventT0), notifyEvent("a", eventT0.Add(time.Second))
		b1 := notifyEvent("b", eventT0.Add(time.Minute))
		putEvents(t, s, a1, a2, b1)
		w := mustDue(t, s, far, 1)[0]
		w.Attempts, w.NextAttemptAt, w.LastError = 1, eventT0.Add(time.Hour), "receiver answered 503"
		mustPutWebhook(t, s, w)
		// a's newer event waits behind the older one; b is not hidden.
		assertDueWebhooks(t, s, eventT0.Add(time.Hour-time.Nanosecond), 0, b1.ID)
		due := mustDue(t, s, eventT0.Add(time.Hour), 0)
		if len(due) != 2 || due[0].Event.ID != a1.ID {
			t.Fatalf("DueWebhooks at the retry = %v, want a1 then b1", webhookIDs(due))
		}
		got := due[0]
		if got.Attempts != 1 || !got.NextAttemptAt.Equal(w.NextAttemptAt) || got.LastError != w.LastError || got.Version != w.Version {
			t.Errorf("webhook after PutWebhook = %+v, want %+v", *got, *w)
		}
	})

	t.Run("FinalLeavesTheOutbox", func(t *testing.T) {
		for _, state := range []events.State{events.StateDelivered, events.StateGivenUp} {
			t.Run(state.String(), func(t *testing.T) {
				s := open(t)
				a1, a2 := notifyEvent("a", eventT0), notifyEvent("a", eventT0.Add(time.Second))
				putEvents(t, s, a1, a2)
				w := mustDue(t, s, far, 0)[0]
				w.State, w.Attempts = state, 1
				mustPutWebhook(t, s, w)
				assertDueWebhooks(t, s, far, 0, a2.ID)
				assertBacklog(t, s, 1, a2.OccurredAt)
				// The event stays in the audit trail.
				assertEvents(t, s, tokens.EventFilter{UserID: "a"}, a2, a1)
			})
		}
	})

	t.Run("PutWebhookConflict", func(t *testing.T) {
		s := open(t)
		putEvents(t, s, notifyEvent("a", eventT0))
		w := mustDue(t, s, far, 0)[0]
		stale := *w
		w.Attempts = 1
		mustPutWebhook(t, s, w)
		stale.State = events.StateDelivered
		staleVersion := stale.Version
		err := s.PutWebhook(t.Context(), &stale)
		if !errors.Is(err, events.ErrVersionConflict) || tokens.ErrorCode(err) != tokens.ECONFLICT {
			t.Fatalf("PutWebhook(stale) error = %v, want ErrVersionConflict", err)
		}
		if stale.Version != staleVersion {
			t.Errorf("stale.Version = %d after a refused PutWebhook, want %d", stale.Version, staleVersion)
		}
		assertDueWebhooks(t, s, far, 0, w.Event.ID)
	})

	t.Run("PutWebhookNotFound", func(t *testing.T) {
		s := open(t)
		ev := notifyEvent("a", eventT0)
		putEvents(t, s, ev)
		w := mustDue(t, s, far, 0)[0]
		unknown := *w
		unknown.Event.ID = "evt_unknown"
		if err := s.PutWebhook(t.Context(), &unknown); !errors.Is(err, events.ErrWebhookNotFound) {
			t.Errorf("PutWebhook(unknown event) error = %v, want ErrWebhookNotFound", err)
		}
		if n, err := s.DeleteEventsBefore(t.Context(), eventT0.Add(time.Second)); err != nil || n != 1 {
			t.Fatalf("DeleteEventsBefore = %d, %v; want 1, nil", n, err)
		}
		if err := s.PutWebhook(t.Context(), w); !errors.Is(err, events.ErrWebhookNotFound) || tokens.ErrorCode(err) != tokens.ENOTFOUND {
			t.Errorf("PutWebhook(removed event) error = %v, want ErrWebhookNotFound", err)
		}
		assertDueWebhooks(t, s, far, 0)
		assertBacklog(t, s, 0, time.Time{})
	})

	t.Run("Claims", func(t *testing.T) { testWebhookClaims(t, open) })

	t.Run("ConcurrentClaims", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		held := 0
		for i := range 8 {
			wg.Go(func() {
				ok, err := s.ClaimWebhooks(t.Context(), "u1", fmt.Sprint("owner-", i), eventT0, eventT0.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					held++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if held != 1 {
			t.Errorf("%d concurrent claims held, want 1", held)
		}
	})

	t.Run("ContextEnded", func(t *testing.T) {
		s := open(t)
		putEvents(t, s, notifyEvent("a", eventT0))
		w := mustDue(t, s, far, 0)[0]
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for _, c := range []struct {
			name string
			call func() error
		}{
			{"DueWebhooks", func() error { _, err := s.DueWebhooks(ctx, far, 0); return err }},
			{"ClaimWebhooks", func() error { _, err := s.ClaimWebhooks(ctx, "a", "o", eventT0, far); return err }},
			{"PutWebhook", func() error { c := *w; c.State = events.StateDelivered; return s.PutWebhook(ctx, &c) }},
			{"WebhookBacklog", func() error { _, _, err := s.WebhookBacklog(ctx); return err }},
		} {
			t.Run(c.name, func(t *testing.T) {
				if got, want := tokens.ErrorCode(c.call()), tokens.EUNAVAILABLE; got != want {
					t.Errorf("%s(ended context) error code = %q, want %q", c.name, got, want)
				}
			})
		}
		assertDueWebhooks(t, s, far, 0, w.Event.ID)
	})
}

// testWebhookClaims checks ClaimWebhooks and ReleaseWebhooks step by step, as
// RunLeases checks leases.
func testWebhookClaims(t *testing.T, open func(t *testing.T) WebhookStore) {
	at := func(d time.Duration) time.Time { return eventT0.Add(d) }
	type step struct {
		claim      bool // else release
		user       string
		owner      string
		now, until time.Duration
		wantHeld   bool
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"Free", []step{{true, "u", "a", 0, time.Minute, true}}},
		{"OthersRefused", []step{
			{true, "u", "a", 0, time.Minute, true},
			{true, "u", "b", time.Second, time.Minute, false},
			{true, "u", "a", 2 * time.Second, 2 * time.Minute, true},
			{true, "u", "b", time.Minute + time.Second, 3 * time.Minute, false}, // extended
		}},
		{"HeldUntilItsEnd", []step{
			{true, "u", "a", 0, time.Minute, true},
			{true, "u", "b", time.Minute, 2 * time.Minute, false},
			{true, "u", "b", time.Minute + time.Nanosecond, 2 * time.Minute, true},
		}},
		{"Release", []step{
			{true, "u", "a", 0, time.Minute, true},
			{false, "u", "b", 0, 0, false}, // not b's: nothing happens
			{true, "u", "b", time.Second, time.Minute, false},
			{false, "u", "a", 0, 0, false},
			{true, "u", "b", 2 * time.Second, time.Minute, true},
		}},
		{"UsersIndependent", []step{
			{true, "u", "a", 0, time.Minute, true},
			{true, "u#", "b", 0, time.Minute, true},
			{true, "v", "b", 0, time.Minute, true},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			for i, st := range tt.steps {
				if !st.claim {
					if err := s.ReleaseWebhooks(t.Context(), st.user, st.owner); err != nil {
						t.Fatalf("step %d: ReleaseWebhooks error = %v", i, err)
					}
					continue
				}
				held, err := s.ClaimWebhooks(t.Context(), st.user, st.owner, at(st.now), at(st.until))
				if err != nil || held != st.wantHeld {
					t.Fatalf("step %d: ClaimWebhooks(%q, %q) = %v, %v; want %v", i, st.user, st.owner, held, err, st.wantHeld)
				}
			}
		})
	}
	t.Run("Invalid", func(t *testing.T) {
		s := open(t)
		for _, args := range [][2]string{{"", "a"}, {"u", ""}} {
			_, err := s.ClaimWebhooks(t.Context(), args[0], args[1], eventT0, eventT0.Add(time.Minute))
			assertRule(t, err, events.CheckClaim(args[0], args[1]))
			if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
				t.Errorf("ClaimWebhooks(%q, %q) error code = %q, want %q", args[0], args[1], got, want)
			}
		}
		if err := s.ReleaseWebhooks(t.Context(), "", ""); err != nil {
			t.Errorf("ReleaseWebhooks(empty) error = %v, want nil", err)
		}
	})
}

// notifyEvent returns a link.relink_required event of userID at at, to be
// sent to the webhook.
func notifyEvent(userID string, at time.Time) tokens.Event {
	e := NewTestEvent(tokens.EventRelinkRequired, userID, at)
	e.Notify = true
	return e
}

// putEvents stores evs with the creation of a link of a user of their own.
func putEvents(tb testing.TB, s tokens.Store, evs ...tokens.Event) {
	tb.Helper()
	if err := s.PutLink(tb.Context(), NewLink("events-carrier"), evs...); err != nil {
		tb.Fatalf("PutLink with %d events: %v", len(evs), err)
	}
}

func mustDue(tb testing.TB, s events.Store, now time.Time, limit int) []*events.Webhook {
	tb.Helper()
	due, err := s.DueWebhooks(tb.Context(), now, limit)
	if err != nil {
		tb.Fatalf("DueWebhooks error = %v", err)
	}
	return due
}

func mustPutWebhook(tb testing.TB, s events.Store, w *events.Webhook) {
	tb.Helper()
	before := w.Version
	if err := s.PutWebhook(tb.Context(), w); err != nil {
		tb.Fatalf("PutWebhook(%s, version %d) error = %v", w.Event.ID, w.Version, err)
	}
	if w.Version == before {
		tb.Errorf("PutWebhook left the version at %d", before)
	}
}

func assertDueWebhooks(tb testing.TB, s events.Store, now time.Time, limit int, want ...string) {
	tb.Helper()
	got := webhookIDs(mustDue(tb, s, now, limit))
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("DueWebhooks(%s, %d) (-want +got):\n%s", now.Format(time.RFC3339Nano), limit, diff)
	}
}

func assertBacklog(tb testing.TB, s events.Store, want int, oldest time.Time) {
	tb.Helper()
	n, got, err := s.WebhookBacklog(tb.Context())
	if err != nil || n != want || !got.Equal(oldest) {
		tb.Errorf("WebhookBacklog = %d, %v, %v; want %d, %v", n, got, err, want, oldest)
	}
}

func webhookIDs(ws []*events.Webhook) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.Event.ID)
	}
	return out
}
