package reciprocal_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// testClock is a clock that moves only when told.
type testClock struct{ t time.Time }

func newTestClock() *testClock               { return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }
func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func principal(user, client string) auth.Principal {
	return auth.Principal{Subject: user, ClientID: client}
}

// allow asks l for one hand-over and fails the test unless it is allowed.
func allow(tb testing.TB, l *reciprocal.Limiter, p auth.Principal) {
	tb.Helper()
	if wait, err := l.Allow(p); err != nil {
		tb.Fatalf("Allow(%s of %s) = %v, %v; want allowed", p.Subject, p.ClientID, wait, err)
	}
}

// refuse asks l for one hand-over and fails the test unless it is refused
// with an ERATELIMIT error naming who, and retryAfter.
func refuse(tb testing.TB, l *reciprocal.Limiter, p auth.Principal, who string, retryAfter time.Duration) {
	tb.Helper()
	wait, err := l.Allow(p)
	if got, want := tokens.ErrorCode(err), tokens.ERATELIMIT; got != want {
		tb.Fatalf("Allow(%s of %s) error = %v (code %q), want code %q", p.Subject, p.ClientID, err, got, want)
	}
	if !strings.Contains(tokens.ErrorMessage(err), who) {
		tb.Errorf("refusal %q does not name %q", tokens.ErrorMessage(err), who)
	}
	if wait != retryAfter {
		tb.Errorf("Allow(%s of %s) retry after %v, want %v", p.Subject, p.ClientID, wait, retryAfter)
	}
}

func TestLimiter_Allow(t *testing.T) {
	perMinute := func(n int) reciprocal.Rate { return reciprocal.Rate{Count: n, Per: time.Minute} }

	t.Run("UserBurst", func(t *testing.T) {
		clock := newTestClock()
		l := reciprocal.NewLimiter(perMinute(10), perMinute(1000), clock.now)
		for range 10 {
			allow(t, l, principal("alice", "alexa"))
		}
		// One hand-over comes back every 6 s.
		refuse(t, l, principal("alice", "alexa"), "user", 6*time.Second)
		clock.advance(2 * time.Second)
		refuse(t, l, principal("alice", "alexa"), "user", 4*time.Second)
		allow(t, l, principal("bob", "alexa")) // another user is not affected
		clock.advance(4 * time.Second)
		allow(t, l, principal("alice", "alexa"))
		refuse(t, l, principal("alice", "alexa"), "user", 6*time.Second)
	})

	t.Run("ClientLimit", func(t *testing.T) {
		clock := newTestClock()
		l := reciprocal.NewLimiter(perMinute(10), perMinute(3), clock.now)
		for _, u := range []string{"a", "b", "c"} {
			allow(t, l, principal(u, "alexa"))
		}
		refuse(t, l, principal("d", "alexa"), "client", 20*time.Second)
		allow(t, l, principal("d", "other-client"))
		clock.advance(20 * time.Second)
		// The refusal took nothing from d's own allowance: ten remain.
		allow(t, l, principal("d", "alexa"))
		refuse(t, l, principal("e", "alexa"), "client", 20*time.Second)
	})

	t.Run("RefusalTakesNothing", func(t *testing.T) {
		clock := newTestClock()
		l := reciprocal.NewLimiter(perMinute(1), perMinute(2), clock.now)
		allow(t, l, principal("alice", "alexa"))
		for range 5 {
			refuse(t, l, principal("alice", "alexa"), "user", time.Minute)
		}
		// alice's refusals left the client's second hand-over to bob.
		allow(t, l, principal("bob", "alexa"))
	})

	t.Run("RetryAfterWholeSeconds", func(t *testing.T) {
		clock := newTestClock()
		l := reciprocal.NewLimiter(reciprocal.Rate{Count: 4, Per: time.Second}, reciprocal.Rate{}, clock.now)
		for range 4 {
			allow(t, l, principal("alice", "alexa"))
		}
		refuse(t, l, principal("alice", "alexa"), "user", time.Second) // 250ms, rounded up
		l = reciprocal.NewLimiter(reciprocal.Rate{Count: 2, Per: 3 * time.Second}, reciprocal.Rate{}, clock.now)
		allow(t, l, principal("alice", "alexa"))
		allow(t, l, principal("alice", "alexa"))
		clock.advance(100 * time.Millisecond)
		refuse(t, l, principal("alice", "alexa"), "user", 2*time.Second) // 1.4 s, rounded up
	})

	t.Run("Off", func(t *testing.T) {
		l := reciprocal.NewLimiter(reciprocal.Rate{}, reciprocal.Rate{}, nil)
		for range 10_000 {
			allow(t, l, principal("alice", "alexa"))
		}
		var none *reciprocal.Limiter
		allow(t, none, principal("alice", "alexa"))
	})

	// Bounded memory: a hundred thousand users, one hand-over each, 10 ms
	// apart. A user's bucket is full again 6 s after one hand-over, and then
	// may be dropped: the limiter keeps those of the last few seconds (600)
	// and at most as many again before it prunes, never all.
	t.Run("MemoryBounded", func(t *testing.T) {
		clock := newTestClock()
		l := reciprocal.NewLimiter(perMinute(10), reciprocal.Rate{}, clock.now)
		most := 0
		for i := range 100_000 {
			allow(t, l, principal(fmt.Sprintf("user-%d", i), "alexa"))
			clock.advance(10 * time.Millisecond)
			users, _ := l.Buckets()
			most = max(most, users)
		}
		t.Logf("most user buckets kept: %d", most)
		if most > 2048 {
			t.Errorf("the limiter kept up to %d user buckets, want at most 2048", most)
		}
	})
}

// TestHandler_RateLimit: a burst of hand-overs from one user is answered 429
// with Retry-After and an RFC 6749 body beyond the limit, without asking LWA;
// another user of the same client is not affected.
func TestHandler_RateLimit(t *testing.T) {
	f := newFixture(t)
	clock := newTestClock()
	f.handler.Limiter = reciprocal.NewLimiter(reciprocal.Rate{Count: 3, Per: time.Minute}, reciprocal.DefaultClientRate, clock.now)
	for i := range 3 {
		if w := f.serve(http.MethodPost, formType, "Bearer "+userJWT, amazonForm()); w.Code != http.StatusOK {
			t.Fatalf("hand-over %d: status %d %s, want 200", i, w.Code, w.Body)
		}
	}
	for range 5 {
		w := f.serve(http.MethodPost, formType, "Bearer "+userJWT, amazonForm())
		assertResponse(t, w, http.StatusTooManyRequests, "temporarily_unavailable", "")
		if got, want := w.Header().Get("Retry-After"), "20"; got != want {
			t.Errorf("Retry-After = %q, want %q", got, want)
		}
	}
	if got, want := len(f.exch.exchanges()), 3; got != want {
		t.Errorf("exchanges = %d, want %d: refused hand-overs must not reach LWA", got, want)
	}
	// user-3, another user of an allowed client, is not affected.
	if w := f.serve(http.MethodPost, formType, "Bearer "+secondJWT, form("grant_type", reciprocal.GrantType, "code", code, "client_id", alexaClient2)); w.Code != http.StatusOK {
		t.Errorf("another user's hand-over: status %d %s, want 200", w.Code, w.Body)
	}
	clock.advance(20 * time.Second)
	if w := f.serve(http.MethodPost, formType, "Bearer "+userJWT, amazonForm()); w.Code != http.StatusOK {
		t.Errorf("hand-over after Retry-After: status %d %s, want 200", w.Code, w.Body)
	}
}
