package alexa_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/alexa"
	"github.com/reciprocal-broker/broker/internal/amazontest"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// start is the simulators' and the client's clock at the start of every test.
var start = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// env is an LWA simulator that mints access tokens, and an Alexa Health API
// simulator that accepts them.
type env struct {
	lwa   *sim.LWA
	alexa *sim.Alexa
	clock *sim.Clock
}

// startEnv starts an LWA and an Alexa simulator on loopback ports, closed when
// the test ends; mod, when not nil, adjusts the Alexa options.
func startEnv(tb testing.TB, mod func(*sim.AlexaOptions)) env {
	tb.Helper()
	e := env{clock: sim.NewClock(start)}
	e.lwa = sim.NewLWA(sim.LWAOptions{Now: e.clock.Now})
	if err := e.lwa.Start(context.Background()); err != nil {
		tb.Fatalf("LWA Start: %v", err)
	}
	tb.Cleanup(func() { _ = e.lwa.Close() })
	e.alexa = e.startAlexa(tb, mod)
	return e
}

// startAlexa starts one more Alexa simulator that accepts e's tokens, as the
// API host of another region.
func (e env) startAlexa(tb testing.TB, mod func(*sim.AlexaOptions)) *sim.Alexa {
	tb.Helper()
	opts := sim.AlexaOptions{LWA: e.lwa, Now: e.clock.Now}
	if mod != nil {
		mod(&opts)
	}
	a := sim.NewAlexa(opts)
	if err := a.Start(context.Background()); err != nil {
		tb.Fatalf("Alexa Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := a.Close(); err != nil {
			tb.Errorf("Alexa Close: %v", err)
		}
	})
	return a
}

// token returns a valid LWA access token of user, exchanged at the LWA
// simulator as the broker would.
func (e env) token(tb testing.TB, user string) tokens.Secret {
	tb.Helper()
	resp, err := http.PostForm(e.lwa.TokenURL(), url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {e.lwa.IssueCodeFor(user)},
		"client_id":     {e.lwa.ClientID()},
		"client_secret": {e.lwa.ClientSecret()},
	})
	if err != nil {
		tb.Fatalf("exchange: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		tb.Fatalf("exchange: status %d, err %v", resp.StatusCode, err)
	}
	return tokens.Secret(body.AccessToken)
}

// newClient returns a client on e's clock with opts; an empty BaseURL means
// e's Alexa simulator.
func (e env) newClient(tb testing.TB, opts alexa.Options) *alexa.Client {
	tb.Helper()
	if opts.BaseURL == "" && e.alexa != nil {
		opts.BaseURL = e.alexa.URL()
	}
	if opts.Now == nil && e.clock != nil {
		opts.Now = e.clock.Now
	}
	c, err := alexa.New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// sampleReport returns samples/health-profile-report.json as a report of user.
func sampleReport(user, messageID string) *reports.Report {
	return &reports.Report{
		MessageID: messageID,
		UserID:    user,
		Profiles: []reports.Profile{{
			ProfileID: "baby-7f3c",
			Name:      reports.Name{FirstName: "Jennifer", LastName: "Doe", NickNames: []string{"Baby", "Jenny"}},
			Capabilities: []reports.Capability{
				{Name: "Alexa.Health.DiaperChange", Type: "AlexaInterface", Version: "1", SupportedOperations: []string{"Add", "Delete", "Get"}},
				{Name: "Alexa.Health.Sleep", Type: "AlexaInterface", Version: "1", SupportedOperations: []string{"Add", "Delete", "Get", "Start", "Stop", "Cancel", "Resume", "Pause"}},
			},
		}},
	}
}

// contextWithTimeout returns a context that ends after d or with the test.
func contextWithTimeout(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), d)
	tb.Cleanup(cancel)
	return ctx
}

// assertNoSecret fails when any printed form of err contains one of secrets.
func assertNoSecret(tb testing.TB, err error, secrets ...string) {
	tb.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, tokens.ErrorMessage(err))
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		text += "|" + u.Error()
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			tb.Errorf("error contains a secret %q: %s", s, text)
		}
	}
}

// assertRetry fails unless err is a bare *reports.RetryError with status and after.
func assertRetry(tb testing.TB, err error, status int, after time.Duration) *reports.RetryError {
	tb.Helper()
	re, ok := err.(*reports.RetryError)
	if !ok {
		tb.Fatalf("err = %v (%T), want a *reports.RetryError", err, err)
	}
	if re.Status != status || re.After != after {
		tb.Errorf("RetryError = {Status: %d, After: %v}, want {Status: %d, After: %v}", re.Status, re.After, status, after)
	}
	if re.Reason == "" {
		tb.Error("RetryError has no Reason")
	}
	return re
}

// wireReport is the body the API receives.
type wireReport struct {
	Report struct {
		MessageID string            `json:"messageId"`
		Profiles  []reports.Profile `json:"profiles"`
	} `json:"report"`
}

func TestClient_Send(t *testing.T) {
	const user = "amzn1.account.USER"
	tests := []struct {
		name    string
		prepare func(e env)                    // after the token was minted
		token   func(tok string) string        // changes the token sent
		report  func(r *reports.Report)        // changes the report sent
		check   func(tb testing.TB, err error) // checks Send's answer
		// delivered is how many reports the simulator accepted.
		delivered int
		// requests is how many requests reached the simulator.
		requests int
	}{
		{
			name:      "Delivered",
			check:     func(tb testing.TB, err error) { tb.Helper(); assertNoError(tb, err) },
			delivered: 1, requests: 1,
		},
		{
			name:     "TokenRejected",
			prepare:  func(e env) { e.alexa.RejectTokenNext(1) },
			check:    wantIs(reports.ErrTokenRejected, tokens.EUNAUTHENTICATED),
			requests: 1,
		},
		{
			name:     "TokenExpired",
			prepare:  func(e env) { e.clock.Advance(sim.DefaultLWAAccessTokenLifetime) },
			check:    wantIs(reports.ErrTokenRejected, tokens.EUNAUTHENTICATED),
			requests: 1,
		},
		{
			name:     "TokenUnknown",
			token:    func(string) string { return "Atza|IQEBnot-issued-by-lwa" },
			check:    wantIs(reports.ErrTokenRejected, tokens.EUNAUTHENTICATED),
			requests: 1,
		},
		{
			name:  "TokenEmpty",
			token: func(string) string { return "" },
			check: wantIs(reports.ErrTokenRejected, tokens.EUNAUTHENTICATED),
		},
		{
			name:     "PermissionWithdrawn",
			prepare:  func(e env) { e.alexa.RevokeUser(user) },
			check:    wantIs(reports.ErrPermissionWithdrawn, tokens.EPERMISSION),
			requests: 1,
		},
		{
			name:     "Throttled",
			prepare:  func(e env) { e.alexa.ThrottleNext(1, 7*time.Second) },
			check:    wantRetry(http.StatusTooManyRequests, 7*time.Second),
			requests: 1,
		},
		{
			name:     "ServerError",
			prepare:  func(e env) { e.alexa.FailNext(1, http.StatusInternalServerError, 0) },
			check:    wantRetry(http.StatusInternalServerError, 0),
			requests: 1,
		},
		{
			name:     "BadGateway",
			prepare:  func(e env) { e.alexa.FailNext(1, http.StatusBadGateway, 0) },
			check:    wantRetry(http.StatusBadGateway, 0),
			requests: 1,
		},
		{
			name:     "Unavailable",
			prepare:  func(e env) { e.alexa.FailNext(1, http.StatusServiceUnavailable, 2*time.Second) },
			check:    wantRetry(http.StatusServiceUnavailable, 2*time.Second),
			requests: 1,
		},
		{
			name:   "InvalidReport",
			report: func(r *reports.Report) { r.Profiles[0].Name.NickNames = nil },
			check: wantInvalid("Alexa refused the report: 400 Bad Request",
				"report.profiles[0].name.nickNames: at least one nickname is required"),
			requests: 1,
		},
		{
			name:     "OtherClientError",
			prepare:  func(e env) { e.alexa.FailNext(1, http.StatusConflict, 0) },
			check:    wantInvalid("Alexa refused the report: 409 Conflict"),
			requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, nil)
			tok := string(e.token(t, user))
			if tt.prepare != nil {
				tt.prepare(e)
			}
			sent := tok
			if tt.token != nil {
				sent = tt.token(tok)
			}
			r := sampleReport(user, "msg-"+tt.name)
			if tt.report != nil {
				tt.report(r)
			}
			err := e.newClient(t, alexa.Options{}).Send(t.Context(), "", tokens.Secret(sent), r)
			t.Logf("Send: %v", err)
			tt.check(t, err)
			assertNoSecret(t, err, tok, sent)

			stats := e.alexa.Stats()
			if got := stats.Requests; got != tt.requests {
				t.Errorf("requests = %d, want %d", got, tt.requests)
			}
			got := e.alexa.Received(user)
			if len(got) != tt.delivered {
				t.Fatalf("delivered = %d, want %d", len(got), tt.delivered)
			}
			if tt.delivered == 0 {
				return
			}
			var w wireReport
			if err := json.Unmarshal(got[0].Body, &w); err != nil {
				t.Fatal(err)
			}
			if got, want := w.Report.MessageID, r.MessageID; got != want {
				t.Errorf("messageId = %q, want %q", got, want)
			}
			if diff := cmp.Diff(r.Profiles, w.Report.Profiles); diff != "" {
				t.Errorf("profiles received (-sent +received):\n%s", diff)
			}
		})
	}
	t.Run("NilReport", func(t *testing.T) {
		e := startEnv(t, nil)
		err := e.newClient(t, alexa.Options{}).Send(t.Context(), "", "Atza|x", nil)
		if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
			t.Errorf("code = %q, want %q (err %v)", got, want, err)
		}
		if got := e.alexa.Stats().Requests; got != 0 {
			t.Errorf("requests = %d, want 0", got)
		}
	})
	t.Run("ExactBody", func(t *testing.T) {
		e := startEnv(t, nil)
		r := sampleReport(user, "m-1")
		r.Profiles[0].Name.LastName = ""
		r.Profiles[0].Capabilities = r.Profiles[0].Capabilities[:1]
		if err := e.newClient(t, alexa.Options{}).Send(t.Context(), "", e.token(t, user), r); err != nil {
			t.Fatal(err)
		}
		want := `{"report":{"messageId":"m-1","profiles":[{"profileId":"baby-7f3c",` +
			`"name":{"firstName":"Jennifer","nickNames":["Baby","Jenny"]},` +
			`"capabilities":[{"name":"Alexa.Health.DiaperChange","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get"]}]}]}}`
		if got := string(e.alexa.Received(user)[0].Body); got != want {
			t.Errorf("body =\n%s\nwant\n%s", got, want)
		}
	})
}

func assertNoError(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("Send: %v", err)
	}
}

// wantIs returns a check that err wraps target and has the domain code.
func wantIs(target error, code tokens.Code) func(testing.TB, error) {
	return func(tb testing.TB, err error) {
		tb.Helper()
		if !errors.Is(err, target) {
			tb.Fatalf("err = %v, want it to wrap %v", err, target)
		}
		if got := tokens.ErrorCode(err); got != code {
			tb.Errorf("code = %q, want %q", got, code)
		}
	}
}

// wantRetry returns a check that err is a *reports.RetryError with status and after.
func wantRetry(status int, after time.Duration) func(testing.TB, error) {
	return func(tb testing.TB, err error) {
		tb.Helper()
		assertRetry(tb, err, status, after)
	}
}

// wantInvalid returns a check that err is an EINVALID error whose message holds
// each of parts.
func wantInvalid(parts ...string) func(testing.TB, error) {
	return func(tb testing.TB, err error) {
		tb.Helper()
		if got := tokens.ErrorCode(err); got != tokens.EINVALID {
			tb.Fatalf("err = %v (code %q), want code %q", err, got, tokens.EINVALID)
		}
		for _, p := range parts {
			if msg := tokens.ErrorMessage(err); !strings.Contains(msg, p) {
				tb.Errorf("message = %q, want it to contain %q", msg, p)
			}
		}
	}
}

func TestClient_SendRegions(t *testing.T) {
	e := startEnv(t, nil) // e.alexa is the default host
	eu, fe := e.startAlexa(t, nil), e.startAlexa(t, nil)
	c := e.newClient(t, alexa.Options{
		BaseURL: e.alexa.URL(),
		Regions: map[string]string{"EU": eu.URL(), "fe": fe.URL() + "/"},
	})
	hosts := map[string]*sim.Alexa{"default": e.alexa, "EU": eu, "FE": fe}
	tests := []struct {
		region string
		want   string // key of hosts
	}{
		{region: "", want: "default"},
		{region: "NA", want: "default"}, // not configured: the base URL
		{region: "EU", want: "EU"},
		{region: "eu", want: "EU"},
		{region: "FE", want: "FE"},
		{region: "XX", want: "default"},
	}
	for _, tt := range tests {
		t.Run("Region"+tt.region, func(t *testing.T) {
			user := "user-" + tt.region
			if err := c.Send(t.Context(), tt.region, e.token(t, user), sampleReport(user, "m")); err != nil {
				t.Fatal(err)
			}
			for name, host := range hosts {
				want := 0
				if name == tt.want {
					want = 1
				}
				if got := len(host.Received(user)); got != want {
					t.Errorf("host %s received %d reports, want %d", name, got, want)
				}
			}
			if got, want := c.Endpoint(tt.region), hosts[tt.want].URL()+alexa.ProfilePath; got != want {
				t.Errorf("Endpoint(%q) = %q, want %q", tt.region, got, want)
			}
		})
	}
}

func TestClient_SendRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		asDate bool
		inject func(a *sim.Alexa)
		status int
		want   time.Duration
	}{
		{
			name:   "Seconds",
			inject: func(a *sim.Alexa) { a.ThrottleNext(1, 5*time.Second) },
			status: http.StatusTooManyRequests, want: 5 * time.Second,
		},
		{
			name:   "SecondsRoundedUp",
			inject: func(a *sim.Alexa) { a.FailNext(1, http.StatusServiceUnavailable, 1500*time.Millisecond) },
			status: http.StatusServiceUnavailable, want: 2 * time.Second,
		},
		{
			name:   "Date",
			asDate: true,
			inject: func(a *sim.Alexa) { a.ThrottleNext(1, 90*time.Second) },
			status: http.StatusTooManyRequests, want: 90 * time.Second,
		},
		{
			name:   "Absent",
			inject: func(a *sim.Alexa) { a.ThrottleNext(1, 0) },
			status: http.StatusTooManyRequests, want: 0,
		},
		{
			name:   "SecondsCapped",
			inject: func(a *sim.Alexa) { a.ThrottleNext(1, 48*time.Hour) },
			status: http.StatusTooManyRequests, want: alexa.MaxRetryAfter,
		},
		{
			name:   "DateCapped",
			asDate: true,
			inject: func(a *sim.Alexa) { a.FailNext(1, http.StatusServiceUnavailable, 48*time.Hour) },
			status: http.StatusServiceUnavailable, want: alexa.MaxRetryAfter,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startEnv(t, func(o *sim.AlexaOptions) { o.RetryAfterAsDate = tt.asDate })
			tok := e.token(t, "u")
			tt.inject(e.alexa)
			err := e.newClient(t, alexa.Options{}).Send(t.Context(), "", tok, sampleReport("u", "m"))
			assertRetry(t, err, tt.status, tt.want)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := start
	tests := []struct {
		value string
		want  time.Duration
	}{
		{value: "", want: 0},
		{value: "0", want: 0},
		{value: "120", want: 2 * time.Minute},
		{value: " 3 ", want: 3 * time.Second},
		{value: "-5", want: 0},
		{value: "1.5", want: 0},
		{value: "soon", want: 0},
		{value: "99999999999999999", want: alexa.MaxRetryAfter},
		{value: "99999999999999999999999", want: alexa.MaxRetryAfter}, // past int64: as long as allowed
		{value: now.Add(45 * time.Second).Format(http.TimeFormat), want: 45 * time.Second},
		{value: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		{value: now.Add(30 * 24 * time.Hour).Format(http.TimeFormat), want: alexa.MaxRetryAfter},
		{value: "Sunday, 01-Jun-25 12:00:10 GMT", want: 10 * time.Second}, // RFC 850
		{value: "Sun Jun  1 12:00:20 2025", want: 20 * time.Second},       // asctime
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			if got := alexa.RetryAfter(tt.value, now); got != tt.want {
				t.Errorf("RetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

func TestClient_SendNoAnswer(t *testing.T) {
	t.Run("SlowBeyondDeadline", func(t *testing.T) {
		e := startEnv(t, nil)
		tok := e.token(t, "u")
		e.alexa.SetDelay(time.Hour)
		began := time.Now()
		err := e.newClient(t, alexa.Options{}).Send(contextWithTimeout(t, 100*time.Millisecond), "", tok, sampleReport("u", "m"))
		if elapsed := time.Since(began); elapsed > 2*time.Second {
			t.Errorf("Send took %v after a 100ms deadline", elapsed)
		}
		re := assertRetry(t, err, 0, 0)
		if !strings.Contains(re.Reason, "deadline") {
			t.Errorf("Reason = %q, want it to mention the deadline", re.Reason)
		}
		assertNoSecret(t, err, string(tok))
		if got := e.alexa.Received("u"); got != nil {
			t.Errorf("received %d reports, want none", len(got))
		}
	})
	t.Run("HTTPClientTimeout", func(t *testing.T) {
		e := startEnv(t, nil)
		tok := e.token(t, "u")
		e.alexa.SetDelay(time.Hour)
		c := e.newClient(t, alexa.Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
		err := c.Send(t.Context(), "", tok, sampleReport("u", "m"))
		re := assertRetry(t, err, 0, 0)
		if !strings.Contains(re.Reason, "in time") {
			t.Errorf("Reason = %q, want a time-out", re.Reason)
		}
		assertNoSecret(t, err, string(tok))
	})
	t.Run("Cancelled", func(t *testing.T) {
		e := startEnv(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := e.newClient(t, alexa.Options{}).Send(ctx, "", "Atza|x", sampleReport("u", "m"))
		re := assertRetry(t, err, 0, 0)
		if !strings.Contains(re.Reason, "cancelled") {
			t.Errorf("Reason = %q, want a cancellation", re.Reason)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		const tok = "Atza|IQEBunreachable-SHOULD-NOT-LEAK"
		c := env{}.newClient(t, alexa.Options{BaseURL: amazontest.ClosedURL(t)})
		err := c.Send(contextWithTimeout(t, 5*time.Second), "", tok, sampleReport("u", "m"))
		assertRetry(t, err, 0, 0)
		assertNoSecret(t, err, tok, "SHOULD-NOT-LEAK")
	})
}

// TestClient_ErrorsHideSecrets runs Send against a hostile API host that quotes
// the request, bearer token included, back in its answers, and checks that no
// error repeats the token, and that a redirect is not followed with it.
func TestClient_ErrorsHideSecrets(t *testing.T) {
	const tok = "Atza|IQEBhostile-SHOULD-NOT-LEAK"
	tests := []struct {
		name        string
		status      int
		contentType string
		format      string // the answer; %s is the quoted request
		check       func(testing.TB, error)
	}{
		{name: "BadRequestJSON", status: 400, contentType: "application/json", format: `{"code":"INVALID %s","message":"bad: %s"}`, check: wantInvalid("400 Bad Request: INVALID")},
		{name: "BadRequestText", status: 400, contentType: "text/plain", format: "bad request: %s\nsecond line", check: wantInvalid("400 Bad Request: bad request:")},
		{name: "NotFoundHTML", status: 404, contentType: "text/html", format: "<html>%s</html>", check: wantInvalid("404 Not Found")},
		{name: "Unauthorized", status: 401, contentType: "application/json", format: `{"message":"%s"}`, check: wantIs(reports.ErrTokenRejected, tokens.EUNAUTHENTICATED)},
		{name: "Forbidden", status: 403, contentType: "text/plain", format: "%s", check: wantIs(reports.ErrPermissionWithdrawn, tokens.EPERMISSION)},
		{name: "Throttled", status: 429, contentType: "application/json", format: `{"code":"%s","message":"%s"}`, check: wantRetry(429, 0)},
		{name: "ServerErrorText", status: 500, contentType: "text/plain", format: "%s", check: wantRetry(500, 0)},
		{name: "UnavailableJSON", status: 503, contentType: "application/problem+json", format: `{"type":"%s"}`, check: wantRetry(503, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := startHostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				echo := strings.NewReplacer(`"`, `'`, "\n", " ").Replace(r.Header.Get("Authorization") + " " + url.QueryEscape(tok) + " " + string(body))
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, strings.ReplaceAll(tt.format, "%s", "%[1]s"), echo)
			}))
			c := env{}.newClient(t, alexa.Options{BaseURL: base})
			err := c.Send(t.Context(), "", tok, sampleReport("u", "m"))
			t.Logf("Send: %v", err)
			tt.check(t, err)
			// Nor the request: the child's name is not a secret, but it is not
			// the error's to repeat.
			assertNoSecret(t, err, tok, "SHOULD-NOT-LEAK", "Jennifer", "messageId")
		})
	}
	t.Run("RedirectNotFollowed", func(t *testing.T) {
		e := startEnv(t, nil)
		base := startHostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, e.alexa.URL()+sim.AlexaHealthProfilePath, http.StatusTemporaryRedirect)
		}))
		c := e.newClient(t, alexa.Options{BaseURL: base})
		err := c.Send(t.Context(), "", e.token(t, "u"), sampleReport("u", "m"))
		wantInvalid("307 Temporary Redirect")(t, err)
		if got := e.alexa.Stats().Requests; got != 0 {
			t.Errorf("the redirect was followed: %d requests reached its target", got)
		}
	})
	t.Run("LongExcerptCut", func(t *testing.T) {
		base := startHostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"message":"%s"}`, strings.Repeat("x\u0007", 10_000))
		}))
		err := env{}.newClient(t, alexa.Options{BaseURL: base}).Send(t.Context(), "", tok, sampleReport("u", "m"))
		msg := tokens.ErrorMessage(err)
		if len(msg) > 400 || strings.ContainsRune(msg, '\u0007') {
			t.Errorf("message is %d bytes or has control characters: %q", len(msg), msg)
		}
	})
}

// startHostile serves h on a loopback port until the test ends and returns its
// base URL.
func startHostile(tb testing.TB, h http.Handler) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestClient_SendConcurrent(t *testing.T) {
	e := startEnv(t, nil)
	c := e.newClient(t, alexa.Options{})
	const users, each = 8, 3
	toks := make([]tokens.Secret, users)
	for i := range toks {
		toks[i] = e.token(t, fmt.Sprintf("user-%d", i))
	}
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			user := fmt.Sprintf("user-%d", i)
			for n := range each {
				if err := c.Send(t.Context(), "", toks[i], sampleReport(user, fmt.Sprintf("m-%d", n))); err != nil {
					t.Errorf("%s: %v", user, err)
				}
			}
		})
	}
	wg.Wait()
	if got, want := e.alexa.Stats().Delivered, users*each; got != want {
		t.Errorf("delivered = %d, want %d", got, want)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		opts     alexa.Options
		wantErr  bool
		region   string
		endpoint string
	}{
		{name: "Defaults", endpoint: "https://api.amazonalexa.com/v1/health/profile"},
		{name: "PathPrefix", opts: alexa.Options{BaseURL: "http://127.0.0.1:8081/alexa/"}, endpoint: "http://127.0.0.1:8081/alexa/v1/health/profile"},
		{name: "DefaultRegionsEU", opts: alexa.Options{Regions: alexa.DefaultRegions()}, region: "EU", endpoint: "https://api.eu.amazonalexa.com/v1/health/profile"},
		{name: "DefaultRegionsFE", opts: alexa.Options{Regions: alexa.DefaultRegions()}, region: "fe", endpoint: "https://api.fe.amazonalexa.com/v1/health/profile"},
		{name: "DefaultRegionsNA", opts: alexa.Options{Regions: alexa.DefaultRegions()}, region: "NA", endpoint: "https://api.amazonalexa.com/v1/health/profile"},
		{name: "NoRegionsMeansBase", opts: alexa.Options{BaseURL: "http://127.0.0.1:1"}, region: "EU", endpoint: "http://127.0.0.1:1/v1/health/profile"},
		{name: "RelativeBaseURL", opts: alexa.Options{BaseURL: "/v1"}, wantErr: true},
		{name: "NoScheme", opts: alexa.Options{BaseURL: "api.amazonalexa.com"}, wantErr: true},
		{name: "OtherScheme", opts: alexa.Options{BaseURL: "ftp://api.amazonalexa.com"}, wantErr: true},
		{name: "Credentials", opts: alexa.Options{BaseURL: "https://user:SHOULD-NOT-LEAK@api.amazonalexa.com"}, wantErr: true},
		{name: "Query", opts: alexa.Options{BaseURL: "https://api.amazonalexa.com?x=1"}, wantErr: true},
		{name: "Fragment", opts: alexa.Options{BaseURL: "https://api.amazonalexa.com#x"}, wantErr: true},
		{name: "BadRegionURL", opts: alexa.Options{Regions: map[string]string{"EU": "api.eu.amazonalexa.com"}}, wantErr: true},
		{name: "EmptyRegionName", opts: alexa.Options{Regions: map[string]string{" ": "https://api.eu.amazonalexa.com"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := alexa.New(tt.opts)
			if tt.wantErr {
				if got := tokens.ErrorCode(err); got != tokens.EINVALID {
					t.Fatalf("New = %v (code %q), want an EINVALID error", err, got)
				}
				assertNoSecret(t, err, "SHOULD-NOT-LEAK")
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := c.Endpoint(tt.region); got != tt.endpoint {
				t.Errorf("Endpoint(%q) = %q, want %q", tt.region, got, tt.endpoint)
			}
		})
	}
	t.Run("DefaultRegionsIsFresh", func(t *testing.T) {
		r := alexa.DefaultRegions()
		if got := len(r); got != 3 {
			t.Errorf("DefaultRegions has %d regions, want 3", got)
		}
		r["EU"] = "changed"
		if got := alexa.DefaultRegions()["EU"]; got != "https://api.eu.amazonalexa.com" {
			t.Errorf("DefaultRegions()[EU] = %q after changing an earlier result", got)
		}
	})
}
