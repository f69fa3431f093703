package lwa_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/amazontest"
	"github.com/reciprocal-broker/broker/internal/lwa"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ lwa.Observer = (*amazontest.Observer)(nil)

// startFormAnswer starts a token endpoint on a loopback port that answers
// every request 200 with a form-encoded grant whose expires_in is not a
// number, which x/oauth2 accepts and the client refuses. It returns its URL.
func startFormAnswer(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		fmt.Fprint(w, "access_token=Atza%7Cform&token_type=bearer&refresh_token=Atzr%7Cform&expires_in=soon")
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + sim.LWATokenPath
}

// TestClient_Observer checks that the Observer is told of every request to LWA
// exactly once, attempts of a retried call included, in order, with the call's
// name and the outcome of LWA's answer: OutcomeOK for a grant, OutcomeThrottled
// for 429, OutcomeRejected for any other 4xx, OutcomeError for 5xx, 408, an
// answer whose error code says LWA failed, and an unreadable 2xx, and OutcomeUnreachable when no answer came. The broker's
// metrics of Amazon's health are these observations, so a request counted
// twice, not at all, or under the wrong outcome misleads whoever is paged.
func TestClient_Observer(t *testing.T) {
	tests := []struct {
		name string
		// call is lwa.CallExchange or lwa.CallRefresh: the method called.
		call string
		// client adjusts the options of the observed client.
		client func(*lwa.Options)
		// prepare injects faults, after the refresh token was obtained.
		prepare func(l *sim.LWA)
		// tokenURL, when set, replaces the simulator's token endpoint.
		tokenURL func(tb testing.TB, l *sim.LWA) string
		// secret, when set, is sent instead of a valid code or refresh token;
		// noSecret sends the empty string.
		secret   string
		noSecret bool
		// timeout is the caller's deadline (4s when zero); attemptTimeout is
		// the HTTP client's bound of each attempt (none when zero).
		timeout, attemptTimeout time.Duration
		// want is the outcome of each request, in order, all of call.
		want []string
	}{
		{
			name: "ExchangeOK",
			call: lwa.CallExchange,
			want: []string{lwa.OutcomeOK},
		},
		{
			name: "RefreshOK",
			call: lwa.CallRefresh,
			want: []string{lwa.OutcomeOK},
		},
		{
			name:    "ThrottledThenOK",
			call:    lwa.CallExchange,
			prepare: func(l *sim.LWA) { l.ThrottleNext(1, 0) },
			want:    []string{lwa.OutcomeThrottled, lwa.OutcomeOK},
		},
		{
			name:    "RefreshThrottledThroughout",
			call:    lwa.CallRefresh,
			client:  func(o *lwa.Options) { o.MaxAttempts = 3 },
			prepare: func(l *sim.LWA) { l.ThrottleNext(3, 0) },
			want:    []string{lwa.OutcomeThrottled, lwa.OutcomeThrottled, lwa.OutcomeThrottled},
		},
		{
			// The wait LWA asks for passes the deadline: one request, one
			// observation, and none for the attempt not made.
			name:    "ThrottledRetryAfterBeyondDeadline",
			call:    lwa.CallExchange,
			prepare: func(l *sim.LWA) { l.ThrottleNext(1, 5*time.Second) },
			timeout: time.Second,
			want:    []string{lwa.OutcomeThrottled},
		},
		{
			name:   "InvalidGrant",
			call:   lwa.CallExchange,
			secret: "ANsimNOSUCHCODE",
			want:   []string{lwa.OutcomeRejected},
		},
		{
			name:   "RefreshInvalidGrant",
			call:   lwa.CallRefresh,
			secret: "Atzr|not-issued-by-lwa",
			want:   []string{lwa.OutcomeRejected},
		},
		{
			name:   "InvalidClient",
			call:   lwa.CallExchange,
			client: func(o *lwa.Options) { o.ClientSecret = "not-the-secret" },
			want:   []string{lwa.OutcomeRejected},
		},
		{
			name:     "NotFound",
			call:     lwa.CallRefresh,
			tokenURL: func(_ testing.TB, l *sim.LWA) string { return l.URL() + "/auth/o2/nowhere" },
			want:     []string{lwa.OutcomeRejected},
		},
		{
			name:    "ServerErrorTwiceThenOK",
			call:    lwa.CallExchange,
			prepare: func(l *sim.LWA) { l.FailNext(2, http.StatusInternalServerError, 0) },
			want:    []string{lwa.OutcomeError, lwa.OutcomeError, lwa.OutcomeOK},
		},
		{
			name:    "RefreshUnavailableThroughout",
			call:    lwa.CallRefresh,
			client:  func(o *lwa.Options) { o.MaxAttempts = 3 },
			prepare: func(l *sim.LWA) { l.FailNext(3, http.StatusServiceUnavailable, 0) },
			want:    []string{lwa.OutcomeError, lwa.OutcomeError, lwa.OutcomeError},
		},
		{
			name:    "BadGatewayThenOK",
			call:    lwa.CallRefresh,
			prepare: func(l *sim.LWA) { l.FailNext(1, http.StatusBadGateway, 0) },
			want:    []string{lwa.OutcomeError, lwa.OutcomeOK},
		},
		{
			name:    "RequestTimeoutThenOK",
			call:    lwa.CallExchange,
			prepare: func(l *sim.LWA) { l.FailNext(1, http.StatusRequestTimeout, 0) },
			want:    []string{lwa.OutcomeError, lwa.OutcomeOK},
		},
		{
			// The simulator's failure says temporarily_unavailable whatever
			// its status: a failure, retried, not a refusal.
			name:    "UnavailableCodeWith400ThenOK",
			call:    lwa.CallExchange,
			prepare: func(l *sim.LWA) { l.FailNext(1, http.StatusBadRequest, 0) },
			want:    []string{lwa.OutcomeError, lwa.OutcomeOK},
		},
		{
			// x/oauth2 cannot read the answer; it is not retried.
			name:    "MalformedJSONAnswer",
			call:    lwa.CallExchange,
			prepare: func(l *sim.LWA) { l.SetExpiresIn(`"soon"`) },
			want:    []string{lwa.OutcomeError},
		},
		{
			// x/oauth2 reads the answer, the client refuses its expires_in.
			name:     "MalformedFormAnswer",
			call:     lwa.CallRefresh,
			tokenURL: func(tb testing.TB, _ *sim.LWA) string { return startFormAnswer(tb) },
			want:     []string{lwa.OutcomeError},
		},
		{
			name:    "SlowBeyondDeadline",
			call:    lwa.CallExchange,
			prepare: func(l *sim.LWA) { l.SetDelay(10 * time.Second) },
			timeout: 200 * time.Millisecond,
			want:    []string{lwa.OutcomeUnreachable},
		},
		{
			name:           "RefreshAttemptTimeout",
			call:           lwa.CallRefresh,
			client:         func(o *lwa.Options) { o.MaxAttempts = 2 },
			prepare:        func(l *sim.LWA) { l.SetDelay(10 * time.Second) },
			attemptTimeout: 50 * time.Millisecond,
			want:           []string{lwa.OutcomeUnreachable, lwa.OutcomeUnreachable},
		},
		{
			name:     "ClosedListener",
			call:     lwa.CallExchange,
			client:   func(o *lwa.Options) { o.MaxAttempts = 3 },
			tokenURL: func(tb testing.TB, _ *sim.LWA) string { return amazontest.ClosedURL(tb) + sim.LWATokenPath },
			want:     []string{lwa.OutcomeUnreachable, lwa.OutcomeUnreachable, lwa.OutcomeUnreachable},
		},
		{
			name:     "RefreshClosedListener",
			call:     lwa.CallRefresh,
			client:   func(o *lwa.Options) { o.MaxAttempts = 2 },
			tokenURL: func(tb testing.TB, _ *sim.LWA) string { return amazontest.ClosedURL(tb) + sim.LWATokenPath },
			want:     []string{lwa.OutcomeUnreachable, lwa.OutcomeUnreachable},
		},
		{
			// Refused before any request: nothing to observe.
			name:     "EmptyCode",
			call:     lwa.CallExchange,
			noSecret: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startLWA(t, sim.LWAOptions{})
			secret := tokens.Secret(l.IssueCode())
			if tt.call == lwa.CallRefresh {
				// An unobserved client obtains the refresh token.
				g, err := newClient(t, l).Exchange(t.Context(), secret)
				if err != nil {
					t.Fatalf("Exchange for a refresh token: %v", err)
				}
				secret = g.RefreshToken
			}
			switch {
			case tt.noSecret:
				secret = ""
			case tt.secret != "":
				secret = tokens.Secret(tt.secret)
			}
			if tt.prepare != nil {
				tt.prepare(l)
			}
			obs := &amazontest.Observer{}
			httpClient, transport := amazontest.CountingClient(t, tt.attemptTimeout)
			c := newClient(t, l, func(o *lwa.Options) {
				o.Observer = obs
				o.HTTPClient = httpClient
				if tt.tokenURL != nil {
					o.TokenURL = tt.tokenURL(t, l)
				}
				if tt.client != nil {
					tt.client(o)
				}
			})
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 4 * time.Second
			}

			var err error
			switch tt.call {
			case lwa.CallExchange:
				_, err = c.Exchange(contextWithTimeout(t, timeout), secret)
			case lwa.CallRefresh:
				_, err = c.Refresh(contextWithTimeout(t, timeout), secret)
			default:
				t.Fatalf("unknown call %q", tt.call)
			}

			var want []amazontest.Observation
			for _, outcome := range tt.want {
				want = append(want, amazontest.Observation{Call: tt.call, Outcome: outcome})
			}
			got := obs.Observations()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
			if got, want := transport.Requests(), len(got); got != want {
				t.Errorf("the client made %d requests, the observer was told of %d", got, want)
			}
			succeeded := len(tt.want) > 0 && tt.want[len(tt.want)-1] == lwa.OutcomeOK
			if got, want := err == nil, succeeded; got != want {
				t.Errorf("%s succeeded = %v, want %v (err: %v)", tt.call, got, want, err)
			}
			var le *lwa.Error
			if errors.As(err, &le) && le.Attempts != len(tt.want) {
				t.Errorf("Error.Attempts = %d, want %d, one per observed request", le.Attempts, len(tt.want))
			}
		})
	}
}

// TestClient_ObserverConcurrent checks that concurrent calls of one client,
// which share its Observer, each tell it of their own requests, none lost or
// doubled, failed attempts included.
func TestClient_ObserverConcurrent(t *testing.T) {
	l := startLWA(t, sim.LWAOptions{})
	obs := &amazontest.Observer{}
	httpClient, transport := amazontest.CountingClient(t, 0)
	c := newClient(t, l, func(o *lwa.Options) { o.Observer = obs; o.HTTPClient = httpClient })
	const users, faults = 8, 3
	// However the faults fall, four attempts make every call succeed.
	l.FailNext(faults, http.StatusInternalServerError, 0)
	var wg sync.WaitGroup
	for range users {
		wg.Go(func() {
			ctx := contextWithTimeout(t, 4*time.Second)
			g, err := c.Exchange(ctx, tokens.Secret(l.IssueCode()))
			if err != nil {
				t.Errorf("Exchange: %v", err)
				return
			}
			if _, err := c.Refresh(ctx, g.RefreshToken); err != nil {
				t.Errorf("Refresh: %v", err)
			}
		})
	}
	wg.Wait()

	got := map[string]int{}
	for _, o := range obs.Observations() {
		if o.Outcome == lwa.OutcomeError {
			got[o.Outcome]++ // a fault hits an exchange or a refresh, as calls interleave
			continue
		}
		got[o.Call+" "+o.Outcome]++
	}
	want := map[string]int{
		lwa.CallExchange + " " + lwa.OutcomeOK: users,
		lwa.CallRefresh + " " + lwa.OutcomeOK:  users,
		lwa.OutcomeError:                       faults,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observations counted (-want +got):\n%s", diff)
	}
	if got, want := transport.Requests(), 2*users+faults; got != want {
		t.Errorf("the client made %d requests, want %d", got, want)
	}
}
