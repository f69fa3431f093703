package reports_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Answers of the fake Alexa Health API, as a Sender returns them.
var (
	errRejected   = fmt.Errorf("alexa: %w", reports.ErrTokenRejected)
	errWithdrawn  = fmt.Errorf("alexa: %w", reports.ErrPermissionWithdrawn)
	errThrottled  = &reports.RetryError{Status: 429, After: 30 * time.Second, Reason: "Too Many Requests"}
	errServer     = &reports.RetryError{Status: 500, Reason: "Internal Server Error"}
	errRefusal    = tokens.Errorf(tokens.EINVALID, "Alexa refused the report: 400 Bad Request")
	errTokensDown = tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon did not answer in time")
)

// deliverHarness is a Deliverer over the fakes. Made inside a synctest bubble,
// its service's clock is the bubble's.
type deliverHarness struct {
	store  *memReports
	tokens *fakeTokens
	sender *fakeSender
	obs    *fakeObserver
	svc    *reports.Service
	d      *reports.Deliverer
}

func newDeliverHarness(tb testing.TB) *deliverHarness {
	tb.Helper()
	h := &deliverHarness{store: newMemReports(), tokens: newFakeTokens(), sender: newFakeSender(), obs: &fakeObserver{}}
	h.tokens.link("u1", "EU")
	h.tokens.link("u2", "FE")
	h.tokens.link("u3", "")
	h.svc, h.d = newDeliverer(h.store, h.tokens, h.sender, h.obs)
	return h
}

// newDeliverer returns a service and its deliverer over the fakes, on the
// bubble's clock, with short waits.
func newDeliverer(store reports.Store, tok reports.Tokens, sender reports.Sender, obs reports.Observer) (*reports.Service, *reports.Deliverer) {
	svc := reports.NewService(store, tok)
	svc.Now = time.Now
	svc.Observer = obs
	d := reports.NewDeliverer(svc, sender)
	d.PollInterval = time.Second
	d.MinBackoff, d.MaxBackoff = time.Second, time.Minute
	return svc, d
}

// run runs d until the test ends, or until the returned stop is called; stop
// waits for Run to return.
func run(tb testing.TB, ctx context.Context, d *reports.Deliverer) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	tb.Cleanup(stop)
	return stop
}

// start runs h's deliverer until the test ends.
func (h *deliverHarness) start(tb testing.TB) {
	tb.Helper()
	run(tb, tb.Context(), h.d)
}

// submit submits the sample profiles for user under messageID.
func (h *deliverHarness) submit(tb testing.TB, user, messageID string) *reports.Report {
	tb.Helper()
	r, err := h.svc.Submit(tb.Context(), user, messageID, sample(tb).Profiles)
	if err != nil {
		tb.Fatalf("Submit(%s, %s) error = %v", user, messageID, err)
	}
	return r
}

// report returns the stored report with messageID.
func (h *deliverHarness) report(tb testing.TB, messageID string) *reports.Report {
	tb.Helper()
	return mustReport(tb, h.store, messageID)
}

func mustReport(tb testing.TB, s reports.Store, messageID string) *reports.Report {
	tb.Helper()
	r, err := s.GetReport(tb.Context(), messageID)
	if err != nil {
		tb.Fatalf("GetReport(%s) error = %v", messageID, err)
	}
	return r
}

// advance lets d of fake time pass, then waits for the bubble to settle.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// assertState fails the test unless r is in state want.
func assertState(tb testing.TB, r *reports.Report, want reports.State) {
	tb.Helper()
	if r.State != want {
		tb.Errorf("report %s is %v (attempts %d, last error %q), want %v", r.MessageID, r.State, r.Attempts, r.LastError, want)
	}
}

// assertObserved fails the test unless o counted want.
func assertObserved(tb testing.TB, o *fakeObserver, want observed) {
	tb.Helper()
	if diff := cmp.Diff(want, o.get()); diff != "" {
		tb.Errorf("observer counts differ (-want +got):\n%s", diff)
	}
}

// assertSent fails the test unless the sender was called with want, in order.
func assertSent(tb testing.TB, s *fakeSender, want ...string) {
	tb.Helper()
	if diff := cmp.Diff(want, s.messageIDs()); diff != "" {
		tb.Errorf("reports sent differ (-want +got):\n%s", diff)
	}
}

// bubble runs f in a synctest bubble, as subtest name, with a new harness.
func bubble(t *testing.T, name string, f func(t *testing.T, h *deliverHarness)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { f(t, newDeliverHarness(t)) })
	})
}

func TestDeliverer(t *testing.T) {
	bubble(t, "Delivered", func(t *testing.T, h *deliverHarness) {
		h.start(t)
		synctest.Wait()
		h.submit(t, "u1", "m1")
		synctest.Wait() // the submission wakes the deliverer: no time passes

		r := h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		if got, want := r.Attempts, 1; got != want {
			t.Errorf("Attempts = %d, want %d", got, want)
		}
		if now := time.Now(); !r.DeliveredAt.Equal(now) || !r.FinishedAt.Equal(now) {
			t.Errorf("DeliveredAt %v, FinishedAt %v; want both %v", r.DeliveredAt, r.FinishedAt, now)
		}
		if r.LastError != "" {
			t.Errorf("LastError = %q, want none", r.LastError)
		}
		want := []sent{{At: time.Now(), Region: "EU", Token: h.tokens.accessToken("u1"), MessageID: "m1", UserID: "u1"}}
		if diff := cmp.Diff(want, h.sender.sends()); diff != "" {
			t.Errorf("sends differ (-want +got):\n%s", diff)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Delivered: 1})
		if diff := cmp.Diff([]time.Duration{0}, h.obs.delivered()); diff != "" {
			t.Errorf("Delivered() durations differ (-want +got):\n%s", diff)
		}
		advance(time.Minute)
		assertSent(t, h.sender, "m1")
	})

	bubble(t, "UnauthorizedOnce", func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errRejected))
		first := h.tokens.accessToken("u1")
		h.submit(t, "u1", "m1")
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		if got, want := r.Attempts, 1; got != want {
			t.Errorf("Attempts = %d, want %d", got, want)
		}
		if got, want := h.tokens.refreshCalls.Load(), int64(1); got != want {
			t.Errorf("Refresh calls = %d, want %d", got, want)
		}
		sends := h.sender.sends()
		if len(sends) != 2 {
			t.Fatalf("%d sends, want 2", len(sends))
		}
		if sends[0].Token != first || sends[1].Token != h.tokens.accessToken("u1") || sends[1].Token == first {
			t.Errorf("tokens sent %q then %q; want %q then the refreshed one", sends[0].Token, sends[1].Token, first)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Delivered: 1})
	})

	bubble(t, "UnauthorizedTwice", func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errRejected, errRejected))
		h.submit(t, "u1", "m1")
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StatePending)
		if got, want := r.Attempts, 1; got != want {
			t.Errorf("Attempts = %d, want %d", got, want)
		}
		if got, want := r.LastError, reports.ErrTokenRejected.Message; got != want {
			t.Errorf("LastError = %q, want %q", got, want)
		}
		wait := time.Until(r.NextAttemptAt)
		if wait < h.d.MinBackoff/2 || wait > h.d.MinBackoff*3/2 {
			t.Errorf("next attempt in %v, want the first backoff, %v ± 50 %%", wait, h.d.MinBackoff)
		}
		if got, want := h.tokens.refreshCalls.Load(), int64(1); got != want {
			t.Errorf("Refresh calls = %d, want %d", got, want)
		}
		assertSent(t, h.sender, "m1", "m1")
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1})

		advance(wait - time.Millisecond)
		assertSent(t, h.sender, "m1", "m1")
		advance(h.d.PollInterval)
		assertSent(t, h.sender, "m1", "m1", "m1")
		r = h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		if got, want := r.Attempts, 2; got != want {
			t.Errorf("Attempts = %d, want %d", got, want)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1, Delivered: 1})
	})

	bubble(t, "PermissionWithdrawn", func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errWithdrawn))
		h.submit(t, "u1", "m1")
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StateFailed)
		if got, want := r.LastError, reports.ErrPermissionWithdrawn.Message; got != want {
			t.Errorf("LastError = %q, want %q", got, want)
		}
		if r.FinishedAt.IsZero() || !r.DeliveredAt.IsZero() {
			t.Errorf("FinishedAt %v, DeliveredAt %v; want finished, not delivered", r.FinishedAt, r.DeliveredAt)
		}
		if got, want := h.tokens.relinkCalls.Load(), int64(1); got != want {
			t.Errorf("RequireRelink calls = %d, want %d", got, want)
		}
		if got, want := h.tokens.state("u1"), tokens.StateRelinkRequired; got != want {
			t.Errorf("link state = %v, want %v", got, want)
		}
		advance(time.Hour)
		assertSent(t, h.sender, "m1")
		assertObserved(t, h.obs, observed{Accepted: 1, Failed: 1})
	})

	bubble(t, "Throttled", func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errThrottled))
		begin := time.Now()
		h.submit(t, "u1", "m1")
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StatePending)
		if got, want := r.NextAttemptAt.Sub(begin), errThrottled.After; got != want {
			t.Errorf("next attempt after %v, want Retry-After's %v", got, want)
		}
		if !strings.Contains(r.LastError, "429") {
			t.Errorf("LastError = %q, want it to say 429", r.LastError)
		}
		advance(errThrottled.After - time.Millisecond)
		assertSent(t, h.sender, "m1")
		advance(h.d.PollInterval)
		assertSent(t, h.sender, "m1", "m1")
		r = h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		if got, want := r.Attempts, 2; got != want {
			t.Errorf("Attempts = %d, want %d", got, want)
		}
		if sends := h.sender.sends(); sends[1].At.Sub(sends[0].At) < errThrottled.After {
			t.Errorf("retried after %v, want at least %v", sends[1].At.Sub(sends[0].At), errThrottled.After)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1, Delivered: 1})
		if got := h.obs.delivered(); len(got) != 1 || got[0] != r.DeliveredAt.Sub(r.SubmittedAt) {
			t.Errorf("Delivered() durations = %v, want [%v]", got, r.DeliveredAt.Sub(r.SubmittedAt))
		}
	})

	bubble(t, "ServerErrorsUntilDeadline", func(t *testing.T, h *deliverHarness) {
		h.d.Deadline = 2 * time.Minute
		h.d.MinBackoff, h.d.MaxBackoff = time.Second, 16*time.Second
		h.d.PollInterval = 100 * time.Millisecond
		h.sender.setRespond(always(errServer))
		begin := time.Now()
		h.submit(t, "u1", "m1")
		h.start(t)
		advance(3 * time.Minute)

		r := h.report(t, "m1")
		assertState(t, r, reports.StateFailed)
		if !strings.Contains(r.LastError, "deadline") || !strings.Contains(r.LastError, "500") {
			t.Errorf("LastError = %q, want the deadline and the last error, 500", r.LastError)
		}
		if r.FinishedAt.Sub(begin) <= h.d.Deadline {
			t.Errorf("failed %v after submission, before the deadline %v", r.FinishedAt.Sub(begin), h.d.Deadline)
		}
		sends := h.sender.sends()
		if len(sends) < 6 {
			t.Fatalf("%d sends in %v, want at least 6", len(sends), h.d.Deadline)
		}
		if got, want := r.Attempts, len(sends); got != want {
			t.Errorf("Attempts = %d, want one per send, %d", got, want)
		}
		if last := sends[len(sends)-1].At.Sub(begin); last > h.d.Deadline {
			t.Errorf("sent %v after submission, past the deadline %v", last, h.d.Deadline)
		}
		// Each wait is the backoff, doubling from MinBackoff up to MaxBackoff,
		// ±50 %, rounded up to the poll interval.
		interval := h.d.MinBackoff
		var gaps []time.Duration
		for i := 1; i < len(sends); i++ {
			gap := sends[i].At.Sub(sends[i-1].At)
			gaps = append(gaps, gap)
			if lo, hi := interval/2, interval*3/2+h.d.PollInterval; gap < lo || gap > hi {
				t.Errorf("wait before attempt %d = %v, want within [%v, %v]", i+1, gap, lo, hi)
			}
			interval = min(2*interval, h.d.MaxBackoff)
		}
		if gaps[3] <= gaps[0] || gaps[4] <= gaps[1] {
			t.Errorf("waits %v do not grow", gaps)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: len(sends), Failed: 1})
	})

	bubble(t, "Refused", func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errRefusal))
		h.submit(t, "u1", "m1")
		h.start(t)
		advance(time.Hour)

		r := h.report(t, "m1")
		assertState(t, r, reports.StateFailed)
		if got, want := r.LastError, errRefusal.Message; got != want {
			t.Errorf("LastError = %q, want %q", got, want)
		}
		if got, want := r.Attempts, 1; got != want {
			t.Errorf("Attempts = %d, want %d", got, want)
		}
		assertSent(t, h.sender, "m1")
		assertObserved(t, h.obs, observed{Accepted: 1, Failed: 1})
	})

	bubble(t, "LinkGone", func(t *testing.T, h *deliverHarness) {
		h.submit(t, "u1", "m1")
		h.tokens.unlink("u1")
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StateFailed)
		if got, want := r.LastError, tokens.ErrLinkNotFound.Message; got != want {
			t.Errorf("LastError = %q, want %q", got, want)
		}
		assertSent(t, h.sender)
		assertObserved(t, h.obs, observed{Accepted: 1, Failed: 1})
	})

	bubble(t, "RelinkRequired", func(t *testing.T, h *deliverHarness) {
		h.submit(t, "u1", "m1")
		if err := h.tokens.RequireRelink(t.Context(), "u1"); err != nil {
			t.Fatal(err)
		}
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StateFailed)
		if got, want := r.LastError, errRelink.Message; got != want {
			t.Errorf("LastError = %q, want %q", got, want)
		}
		assertSent(t, h.sender)
		assertObserved(t, h.obs, observed{Accepted: 1, Failed: 1})
	})

	bubble(t, "RefreshRefused", func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errRejected))
		h.tokens.setErrs(nil, nil, errRelink)
		h.submit(t, "u1", "m1")
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StateFailed)
		if got, want := r.LastError, errRelink.Message; got != want {
			t.Errorf("LastError = %q, want %q", got, want)
		}
		if got, want := h.tokens.refreshCalls.Load(), int64(1); got != want {
			t.Errorf("Refresh calls = %d, want %d", got, want)
		}
		assertSent(t, h.sender, "m1")
	})

	bubble(t, "TokensUnavailable", func(t *testing.T, h *deliverHarness) {
		h.tokens.setErrs(nil, errTokensDown, nil)
		h.submit(t, "u1", "m1")
		h.start(t)
		synctest.Wait()

		r := h.report(t, "m1")
		assertState(t, r, reports.StatePending)
		if got, want := r.LastError, errTokensDown.Message; got != want {
			t.Errorf("LastError = %q, want %q", got, want)
		}
		assertSent(t, h.sender)
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1})

		h.tokens.setErrs(nil, nil, nil)
		advance(time.Until(r.NextAttemptAt) + h.d.PollInterval)
		assertState(t, h.report(t, "m1"), reports.StateDelivered)
		assertSent(t, h.sender, "m1")
	})

	bubble(t, "NewestFirst", func(t *testing.T, h *deliverHarness) {
		for _, id := range []string{"m1", "m2", "m3"} {
			h.submit(t, "u1", id)
		}
		h.start(t)
		synctest.Wait()

		assertSent(t, h.sender, "m3")
		assertState(t, h.report(t, "m3"), reports.StateDelivered)
		for _, id := range []string{"m1", "m2"} {
			r := h.report(t, id)
			assertState(t, r, reports.StateSuperseded)
			if r.Attempts != 0 || r.FinishedAt.IsZero() {
				t.Errorf("%s: attempts %d, finished at %v; want never sent, finished", id, r.Attempts, r.FinishedAt)
			}
		}
		advance(time.Minute)
		assertSent(t, h.sender, "m3")
		assertObserved(t, h.obs, observed{Accepted: 3, Delivered: 1, Superseded: 2})
	})

	t.Run("NewestFirstAfterRetry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newDeliverHarness(t)
			// Budget: one outbox read per poll and one per delivery, with room.
			const budget = 500
			ctx, cancel := context.WithCancel(t.Context())
			var spun atomic.Bool
			h.store.onPendingRead = func(n int64) {
				if n > budget {
					spun.Store(true)
					cancel()
				}
			}
			h.sender.setRespond(script(errThrottled))
			h.submit(t, "u1", "m1")
			h.submit(t, "u1", "m2")
			run(t, ctx, h.d)
			synctest.Wait()
			advance(errThrottled.After + h.d.PollInterval)

			if spun.Load() {
				t.Fatalf("the deliverer read the outbox more than %d times in %v of fake time: it spins", budget, errThrottled.After)
			}
			assertSent(t, h.sender, "m2", "m2")
			assertState(t, h.report(t, "m2"), reports.StateDelivered)
			assertState(t, h.report(t, "m1"), reports.StateSuperseded)
			assertObserved(t, h.obs, observed{Accepted: 2, Retried: 1, Delivered: 1, Superseded: 1})
		})
	})

	bubble(t, "PerUserSerial", func(t *testing.T, h *deliverHarness) {
		gate := h.sender.block()
		h.submit(t, "u1", "a1")
		h.submit(t, "u2", "b1")
		h.start(t)
		synctest.Wait()

		perUser, total, _, _ := h.sender.flight()
		if diff := cmp.Diff(map[string]int{"u1": 1, "u2": 1}, perUser); diff != "" || total != 2 {
			t.Errorf("sends in flight: %d, by user (-want +got):\n%s", total, diff)
		}
		h.submit(t, "u1", "a2") // u1 is busy: a2 waits for a1's send
		synctest.Wait()
		if perUser, _, _, _ := h.sender.flight(); perUser["u1"] != 1 {
			t.Errorf("u1 has %d sends in flight, want 1", perUser["u1"])
		}
		if got := len(h.sender.sends()); got != 2 {
			t.Errorf("%d sends, want 2", got)
		}

		close(gate)
		synctest.Wait()
		for _, id := range []string{"a1", "b1", "a2"} {
			assertState(t, h.report(t, id), reports.StateDelivered)
		}
		var u1 []string
		for _, s := range h.sender.sends() {
			if s.UserID == "u1" {
				u1 = append(u1, s.MessageID)
			}
		}
		if diff := cmp.Diff([]string{"a1", "a2"}, u1); diff != "" {
			t.Errorf("u1's sends differ (-want +got):\n%s", diff)
		}
		if _, _, maxUser, maxTotal := h.sender.flight(); maxUser != 1 || maxTotal != 2 {
			t.Errorf("at most %d sends of one user and %d in all were in flight, want 1 and 2", maxUser, maxTotal)
		}
		assertObserved(t, h.obs, observed{Accepted: 3, Delivered: 3})
	})

	bubble(t, "Concurrency", func(t *testing.T, h *deliverHarness) {
		h.d.Concurrency = 1
		gate := h.sender.block()
		h.submit(t, "u1", "a1")
		h.submit(t, "u2", "b1")
		h.start(t)
		synctest.Wait()
		if _, total, _, _ := h.sender.flight(); total != 1 {
			t.Errorf("%d sends in flight, want Concurrency's 1", total)
		}
		gate <- struct{}{}
		synctest.Wait()
		if _, total, _, _ := h.sender.flight(); total != 1 || len(h.sender.sends()) != 2 {
			t.Errorf("%d sends in flight of %d; want the second user's alone", total, len(h.sender.sends()))
		}
		close(gate)
		synctest.Wait()
		assertState(t, h.report(t, "a1"), reports.StateDelivered)
		assertState(t, h.report(t, "b1"), reports.StateDelivered)
		if _, _, _, maxTotal := h.sender.flight(); maxTotal != 1 {
			t.Errorf("at most %d sends were in flight, want 1", maxTotal)
		}
	})

	bubble(t, "Retention", func(t *testing.T, h *deliverHarness) {
		h.d.Retention = 2 * time.Hour
		h.d.PollInterval = time.Minute
		h.sender.setRespond(func(_ int, r *reports.Report) error {
			switch r.UserID {
			case "u2":
				return errServer
			case "u3":
				return errRefusal
			}
			return nil
		})
		h.submit(t, "u1", "delivered")
		h.submit(t, "u2", "pending")
		h.submit(t, "u3", "failed")
		h.start(t)
		synctest.Wait()
		assertState(t, h.report(t, "delivered"), reports.StateDelivered)
		assertState(t, h.report(t, "failed"), reports.StateFailed)

		advance(90 * time.Minute)
		for _, id := range []string{"delivered", "pending", "failed"} {
			h.report(t, id) // all kept
		}
		advance(40 * time.Minute)
		for _, id := range []string{"delivered", "failed"} {
			if _, err := h.store.GetReport(t.Context(), id); !errors.Is(err, reports.ErrReportNotFound) {
				t.Errorf("%s report %v after retention; want it removed", id, err)
			}
		}
		assertState(t, h.report(t, "pending"), reports.StatePending)
	})

	bubble(t, "TwoInstances", func(t *testing.T, h *deliverHarness) {
		// Two deliverers share the outbox; while one sends, the other keeps off.
		gate := h.sender.block()
		other := newFakeSender()
		otherGate := other.block()
		_, d2 := newDeliverer(h.store, h.tokens, other, h.obs)
		h.submit(t, "u1", "m1")
		h.start(t)
		run(t, t.Context(), d2)
		synctest.Wait()
		if got, want := len(h.sender.sends())+len(other.sends()), 1; got != want {
			t.Fatalf("%d sends of m1 by the two instances, want %d", got, want)
		}
		close(gate)
		close(otherGate)
		synctest.Wait()
		advance(time.Hour)
		r := h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		if got, want := len(h.sender.sends())+len(other.sends()), 1; got != want {
			t.Errorf("%d sends of m1 by the two instances, want %d", got, want)
		}
		if got, want := r.Attempts, 1; got != want {
			t.Errorf("Attempts = %d, want %d", got, want)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Delivered: 1})
	})

	bubble(t, "Restart", func(t *testing.T, h *deliverHarness) {
		begin := time.Now()
		// The first process stops while it sends u1's m1; its attempt holds
		// m1 for a while, then m1 is due again.
		h.sender.block()
		h.submit(t, "u1", "m1")
		stop := run(t, t.Context(), h.d)
		synctest.Wait()
		assertSent(t, h.sender, "m1")
		stop()
		m1 := h.report(t, "m1")
		assertState(t, m1, reports.StatePending)
		if !m1.NextAttemptAt.After(begin) {
			t.Errorf("interrupted m1 is due at %v, want it held beyond %v", m1.NextAttemptAt, begin)
		}
		// It had also accepted u3's m0, never attempted, and left u2's m2
		// waiting for its fourth attempt.
		h.submit(t, "u3", "m0")
		m2 := storetest.NewReport("m2", "u2", begin.Add(-time.Minute))
		m2.Attempts, m2.LastError, m2.NextAttemptAt = 3, errServer.Error(), begin.Add(10*time.Second)
		if _, created, err := h.store.CreateReport(t.Context(), m2); err != nil || !created {
			t.Fatalf("CreateReport(m2): created %v, err %v", created, err)
		}

		// A new process over the same store.
		sender, obs := newFakeSender(), &fakeObserver{}
		_, d := newDeliverer(h.store, h.tokens, sender, obs)
		run(t, t.Context(), d)
		synctest.Wait()
		assertSent(t, sender, "m0")
		assertState(t, h.report(t, "m0"), reports.StateDelivered)
		assertState(t, h.report(t, "m2"), reports.StatePending)

		advance(10*time.Second + d.PollInterval)
		assertSent(t, sender, "m0", "m2")
		r := h.report(t, "m2")
		assertState(t, r, reports.StateDelivered)
		if got, want := r.Attempts, 4; got != want {
			t.Errorf("m2 Attempts = %d, want %d", got, want)
		}

		advance(time.Until(m1.NextAttemptAt) + d.PollInterval)
		assertSent(t, sender, "m0", "m2", "m1")
		assertState(t, h.report(t, "m1"), reports.StateDelivered)
		assertObserved(t, obs, observed{Delivered: 3})
	})
}
