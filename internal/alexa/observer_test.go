package alexa_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/alexa"
	"github.com/reciprocal-broker/broker/internal/amazontest"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ alexa.Observer = (*amazontest.Observer)(nil)

// faultInjector is how a test breaks a simulated API: both the Health API
// (*sim.Alexa) and the Event Gateway (*sim.EventGateway) take these faults.
type faultInjector interface {
	FailNext(n, status int, retryAfter time.Duration)
	ThrottleNext(n int, retryAfter time.Duration)
	RejectTokenNext(n int)
	SetDelay(d time.Duration)
}

var (
	_ faultInjector = (*sim.Alexa)(nil)
	_ faultInjector = (*sim.EventGateway)(nil)
)

// observedAPI is one of the package's clients, as testObserver drives it.
type observedAPI struct {
	// call is the name its Observer is told.
	call string
	// faults returns the simulated API it sends to.
	faults func(a *sim.Alexa) faultInjector
	// send builds the client with opts on e and sends one message of user.
	send func(tb testing.TB, ctx context.Context, e env, opts alexa.Options, user string, tok tokens.Secret) error
}

// TestClient_Observer checks what the Health API client tells its Observer; see
// testObserver.
func TestClient_Observer(t *testing.T) {
	testObserver(t, observedAPI{
		call:   alexa.CallHealth,
		faults: func(a *sim.Alexa) faultInjector { return a },
		send: func(tb testing.TB, ctx context.Context, e env, opts alexa.Options, user string, tok tokens.Secret) error {
			tb.Helper()
			return e.newClient(tb, opts).Send(ctx, "", tok, sampleReport(user, "m-observed"))
		},
	})
}

// TestEventGateway_Observer checks what the Event Gateway client tells its
// Observer; see testObserver.
func TestEventGateway_Observer(t *testing.T) {
	testObserver(t, observedAPI{
		call:   alexa.CallEvents,
		faults: func(a *sim.Alexa) faultInjector { return a.Events() },
		send: func(tb testing.TB, ctx context.Context, e env, opts alexa.Options, _ string, tok tokens.Secret) error {
			tb.Helper()
			return e.newGateway(tb, opts).Send(ctx, "", tok, fmt.Appendf(nil, changeReport, "m-observed"))
		},
	})
}

// testObserver checks that api tells its Observer of every request exactly
// once, with api's call name and the outcome of the answer: OutcomeOK for 2xx,
// OutcomeThrottled for 429, OutcomeRejected for any other 4xx (408 included,
// as the package documents), OutcomeError for 5xx and a redirect, and
// OutcomeUnreachable when no answer came; and of nothing when Send refuses
// before sending. The clients never retry, so a Send is one observation. The
// broker's metrics of Amazon's health are these observations, so a request
// counted under the wrong outcome misleads whoever is paged.
func testObserver(t *testing.T, api observedAPI) {
	const user = "amzn1.account.OBSERVED"
	tests := []struct {
		name string
		// prepare injects faults into the simulated API.
		prepare func(f faultInjector)
		// baseURL, when set, replaces the simulator's base URL.
		baseURL func(tb testing.TB, e env) string
		// timeout is the caller's deadline (none when zero); attemptTimeout is
		// the HTTP client's (none when zero).
		timeout, attemptTimeout time.Duration
		// cancelled sends with a context already cancelled.
		cancelled bool
		// noToken sends the empty access token.
		noToken bool
		// want is the one outcome observed, or "" when no request is made.
		want string
	}{
		{name: "Delivered", want: alexa.OutcomeOK},
		{name: "Throttled", prepare: func(f faultInjector) { f.ThrottleNext(1, time.Second) }, want: alexa.OutcomeThrottled},
		{name: "ThrottledWithoutRetryAfter", prepare: func(f faultInjector) { f.ThrottleNext(1, 0) }, want: alexa.OutcomeThrottled},
		{name: "TokenRejected", prepare: func(f faultInjector) { f.RejectTokenNext(1) }, want: alexa.OutcomeRejected},
		{name: "BadRequest", prepare: func(f faultInjector) { f.FailNext(1, http.StatusBadRequest, 0) }, want: alexa.OutcomeRejected},
		{name: "Forbidden", prepare: func(f faultInjector) { f.FailNext(1, http.StatusForbidden, 0) }, want: alexa.OutcomeRejected},
		{
			name:    "NotFound",
			baseURL: func(_ testing.TB, e env) string { return e.alexa.URL() + "/nowhere" },
			want:    alexa.OutcomeRejected,
		},
		{name: "RequestTimeout", prepare: func(f faultInjector) { f.FailNext(1, http.StatusRequestTimeout, 0) }, want: alexa.OutcomeRejected},
		{name: "ServerError", prepare: func(f faultInjector) { f.FailNext(1, http.StatusInternalServerError, 0) }, want: alexa.OutcomeError},
		{name: "BadGateway", prepare: func(f faultInjector) { f.FailNext(1, http.StatusBadGateway, 0) }, want: alexa.OutcomeError},
		{name: "Unavailable", prepare: func(f faultInjector) { f.FailNext(1, http.StatusServiceUnavailable, 2*time.Second) }, want: alexa.OutcomeError},
		{
			name: "Redirect",
			baseURL: func(tb testing.TB, e env) string {
				return startHostile(tb, http.RedirectHandler(e.alexa.URL(), http.StatusTemporaryRedirect))
			},
			want: alexa.OutcomeError,
		},
		{
			name:    "SlowBeyondDeadline",
			prepare: func(f faultInjector) { f.SetDelay(time.Hour) },
			timeout: 100 * time.Millisecond,
			want:    alexa.OutcomeUnreachable,
		},
		{
			name:           "HTTPClientTimeout",
			prepare:        func(f faultInjector) { f.SetDelay(time.Hour) },
			attemptTimeout: 100 * time.Millisecond,
			want:           alexa.OutcomeUnreachable,
		},
		{name: "Cancelled", cancelled: true, want: alexa.OutcomeUnreachable},
		{
			name:    "ClosedListener",
			baseURL: func(tb testing.TB, _ env) string { return amazontest.ClosedURL(tb) },
			want:    alexa.OutcomeUnreachable,
		},
		{name: "TokenEmpty", noToken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, nil)
			tok := e.token(t, user)
			if tt.noToken {
				tok = ""
			}
			if tt.prepare != nil {
				tt.prepare(api.faults(e.alexa))
			}
			obs := &amazontest.Observer{}
			httpClient, transport := amazontest.CountingClient(t, tt.attemptTimeout)
			opts := alexa.Options{Observer: obs, HTTPClient: httpClient}
			if tt.baseURL != nil {
				opts.BaseURL = tt.baseURL(t, e)
			}
			ctx := t.Context()
			switch {
			case tt.timeout > 0:
				ctx = contextWithTimeout(t, tt.timeout)
			case tt.cancelled:
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
			}

			err := api.send(t, ctx, e, opts, user, tok)

			var want []amazontest.Observation
			if tt.want != "" {
				want = []amazontest.Observation{{Call: api.call, Outcome: tt.want}}
			}
			got := obs.Observations()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("observations (-want +got):\n%s", diff)
			}
			if got, want := transport.Requests(), len(got); got != want {
				t.Errorf("the client made %d requests, the observer was told of %d", got, want)
			}
			if got, want := err == nil, tt.want == alexa.OutcomeOK; got != want {
				t.Errorf("Send succeeded = %v, want %v (err: %v)", got, want, err)
			}
		})
	}
}
