package reports_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
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

// deliverHarness is a Deliverer over the fakes, with users u1 (region EU), u2
// (FE) and u3 (the default region) linked. Made inside a synctest bubble, its
// service's clock is the bubble's.
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

// inBubble runs f in a synctest bubble with a new harness.
func inBubble(t *testing.T, f func(t *testing.T, h *deliverHarness)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) { f(t, newDeliverHarness(t)) })
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
	r, err := h.svc.Submit(tb.Context(), "", user, messageID, sample(tb).Profiles)
	if err != nil {
		tb.Fatalf("Submit(%s, %s) error = %v", user, messageID, err)
	}
	return r
}

// firstAttempt submits u1's report m1, starts the deliverer, lets its first
// attempt run (no time passes) and returns the stored report.
func (h *deliverHarness) firstAttempt(tb testing.TB) *reports.Report {
	tb.Helper()
	h.submit(tb, "u1", "m1")
	h.start(tb)
	synctest.Wait()
	return h.report(tb, "m1")
}

// report returns the stored report with messageID.
func (h *deliverHarness) report(tb testing.TB, messageID string) *reports.Report {
	tb.Helper()
	r, err := h.store.GetReport(tb.Context(), messageID)
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

// assertAttempts fails the test unless r counts want attempts.
func assertAttempts(tb testing.TB, r *reports.Report, want int) {
	tb.Helper()
	if r.Attempts != want {
		tb.Errorf("report %s: Attempts = %d, want %d", r.MessageID, r.Attempts, want)
	}
}

// assertLastError fails the test unless r's LastError is want.
func assertLastError(tb testing.TB, r *reports.Report, want string) {
	tb.Helper()
	if r.LastError != want {
		tb.Errorf("report %s: LastError = %q, want %q", r.MessageID, r.LastError, want)
	}
}

// assertCalls fails the test unless the counter of calls of method is want.
func assertCalls(tb testing.TB, method string, calls *atomic.Int64, want int64) {
	tb.Helper()
	if got := calls.Load(); got != want {
		tb.Errorf("%s calls = %d, want %d", method, got, want)
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
