package alexa_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/alexa"
	"github.com/reciprocal-broker/broker/internal/amazontest"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// changeReport is samples/event-gateway-change-report.json as the broker gets
// it: without the scope, which Send adds. %s is the messageId.
const changeReport = `{
  "event": {
    "header": {"namespace": "Alexa", "name": "ChangeReport", "messageId": "%s", "payloadVersion": "3"},
    "endpoint": {"endpointId": "thermostat-livingroom", "cookie": {"room": "living <&> dining"}},
    "payload": {"change": {"cause": {"type": "PHYSICAL_INTERACTION"}, "properties": [{"namespace": "Alexa.ThermostatController",
      "name": "targetSetpoint", "value": {"value": 21.5, "scale": "CELSIUS"}, "timeOfSample": "2026-12-01T10:00:00.00Z", "uncertaintyInMilliseconds": 500}]}}
  },
  "context": {"properties": [{"namespace": "Alexa.EndpointHealth", "name": "connectivity", "value": {"value": "OK"},
    "timeOfSample": "2026-12-01T10:00:00.00Z", "uncertaintyInMilliseconds": 0}]}
}`

// addOrUpdate is an Alexa.Discovery AddOrUpdateReport without its scope; %s
// is the messageId.
const addOrUpdate = `{
  "event": {
    "header": {"namespace": "Alexa.Discovery", "name": "AddOrUpdateReport", "messageId": "%s", "payloadVersion": "3"},
    "payload": {"endpoints": [{"endpointId": "light-1", "manufacturerName": "Sample", "description": "a light", "friendlyName": "Hall light",
      "displayCategories": ["LIGHT"], "capabilities": [{"type": "AlexaInterface", "interface": "Alexa", "version": "3"}]}]}
  }
}`

// newGateway returns an EventGateway on e's clock with opts; an empty BaseURL
// means e's Alexa simulator.
func (e env) newGateway(tb testing.TB, opts alexa.Options) *alexa.EventGateway {
	tb.Helper()
	if opts.BaseURL == "" && e.alexa != nil {
		opts.BaseURL = e.alexa.URL()
	}
	if opts.Now == nil && e.clock != nil {
		opts.Now = e.clock.Now
	}
	g, err := alexa.NewEventGateway(opts)
	if err != nil {
		tb.Fatalf("NewEventGateway: %v", err)
	}
	return g
}

// decode decodes a JSON object for comparisons.
func decode(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// scopeAt takes the scope out of the object at path ("event.endpoint") in m
// and returns it; nil when there is none.
func scopeAt(m map[string]any, path string) any {
	for _, k := range strings.Split(path, ".") {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	s := m["scope"]
	delete(m, "scope")
	return s
}

func TestEventGateway_Send(t *testing.T) {
	const user = "amzn1.account.USER"
	tests := []struct {
		name    string
		format  string                         // changeReport when empty
		prepare func(e env)                    // after the token was minted
		token   func(tok string) string        // changes the token sent
		check   func(tb testing.TB, err error) // checks Send's answer
		// scopeAt is where the delivered event holds the scope.
		scopeAt string
		// requests is how many requests reached the gateway.
		requests int
	}{
		{
			name:    "ChangeReport",
			check:   func(tb testing.TB, err error) { tb.Helper(); assertNoError(tb, err) },
			scopeAt: "event.endpoint", requests: 1,
		},
		{
			name:    "AddOrUpdateReport",
			format:  addOrUpdate,
			check:   func(tb testing.TB, err error) { tb.Helper(); assertNoError(tb, err) },
			scopeAt: "event.payload", requests: 1,
		},
		{
			name:     "TokenRejected",
			prepare:  func(e env) { e.alexa.Events().RejectTokenNext(1) },
			check:    wantAll(wantIs(reports.ErrTokenRejected, tokens.EUNAUTHENTICATED), wantMessage("Alexa refused the access token (the Alexa Event Gateway answered 401: INVALID_ACCESS_TOKEN_EXCEPTION: The access token is invalid, expired or malformed)")),
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
			name:     "SkillDisabled",
			prepare:  func(e env) { e.alexa.Events().ForbidUser(user, sim.EventSkillDisabled) },
			check:    wantAll(wantIs(reports.ErrPermissionWithdrawn, tokens.EPERMISSION), wantMessage("the skill was disabled or its permission withdrawn (the Alexa Event Gateway answered 403: SKILL_DISABLED_EXCEPTION: The skill is disabled for this user)")),
			requests: 1,
		},
		{
			name:     "SkillNeverEnabled",
			format:   addOrUpdate,
			prepare:  func(e env) { e.alexa.Events().ForbidUser(user, sim.EventSkillNeverEnabled) },
			check:    wantAll(wantIs(reports.ErrPermissionWithdrawn, tokens.EPERMISSION), wantMessage("403: SKILL_NEVER_ENABLED_EXCEPTION")),
			requests: 1,
		},
		{
			name:     "InsufficientPermission",
			prepare:  func(e env) { e.alexa.Events().ForbidUser(user, sim.EventInsufficientPermission) },
			check:    wantAll(wantIs(reports.ErrPermissionWithdrawn, tokens.EPERMISSION), wantMessage("403: INSUFFICIENT_PERMISSION_EXCEPTION")),
			requests: 1,
		},
		{
			name:     "ForbiddenOtherCode",
			prepare:  func(e env) { e.alexa.Events().ForbidUser(user, "ACCOUNT_LOCKED_EXCEPTION") },
			check:    wantInvalid("the Alexa Event Gateway refused the event: 403 Forbidden: ACCOUNT_LOCKED_EXCEPTION: Forbidden"),
			requests: 1,
		},
		{
			name:     "Throttled",
			prepare:  func(e env) { e.alexa.Events().ThrottleNext(1, 7*time.Second) },
			check:    wantAll(wantRetry(http.StatusTooManyRequests, 7*time.Second), wantReason("THROTTLING_EXCEPTION")),
			requests: 1,
		},
		{
			name:     "ServerError",
			prepare:  func(e env) { e.alexa.Events().FailNext(1, http.StatusInternalServerError, 0) },
			check:    wantAll(wantRetry(http.StatusInternalServerError, 0), wantReason("INTERNAL_SERVICE_EXCEPTION")),
			requests: 1,
		},
		{
			name:     "BadGateway",
			prepare:  func(e env) { e.alexa.Events().FailNext(1, http.StatusBadGateway, 0) },
			check:    wantRetry(http.StatusBadGateway, 0),
			requests: 1,
		},
		{
			name:     "Unavailable",
			prepare:  func(e env) { e.alexa.Events().FailNext(1, http.StatusServiceUnavailable, 2*time.Second) },
			check:    wantAll(wantRetry(http.StatusServiceUnavailable, 2*time.Second), wantReason("SERVICE_UNAVAILABLE_EXCEPTION")),
			requests: 1,
		},
		{
			name:     "BadRequest",
			prepare:  func(e env) { e.alexa.Events().FailNext(1, http.StatusBadRequest, 0) },
			check:    wantInvalid("the Alexa Event Gateway refused the event: 400 Bad Request: INVALID_REQUEST_EXCEPTION: The message is invalid"),
			requests: 1,
		},
		{
			name:     "TooLarge",
			prepare:  func(e env) { e.alexa.Events().FailNext(1, http.StatusRequestEntityTooLarge, 0) },
			check:    wantInvalid("413 Request Entity Too Large: REQUEST_ENTITY_TOO_LARGE_EXCEPTION"),
			requests: 1,
		},
		{
			name:   "InvalidMessage",
			format: strings.Replace(changeReport, `"payloadVersion": "3"`, `"payloadVersion": "2"`, 1),
			check:  wantInvalid(`event.header.payloadVersion: must be "3"`),
		},
		{
			name:   "ScopeAlreadySet",
			format: strings.Replace(changeReport, `"endpoint": {`, `"endpoint": {"scope": {"type": "BearerToken", "token": "Atza|x"}, `, 1),
			check:  wantInvalid("event.endpoint.scope: must not be set: the broker adds the token"),
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
			message := []byte(fmt.Sprintf(cmpOr(tt.format, changeReport), "msg-"+tt.name))
			err := e.newGateway(t, alexa.Options{}).Send(t.Context(), "", tokens.Secret(sent), message)
			t.Logf("Send: %v", err)
			tt.check(t, err)
			assertNoSecret(t, err, tok, sent)

			if got := e.alexa.Events().Stats().Requests; got != tt.requests {
				t.Errorf("requests = %d, want %d", got, tt.requests)
			}
			got := e.alexa.Events().Received(user)
			if tt.scopeAt == "" {
				if got != nil {
					t.Errorf("delivered %d events, want none", len(got))
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("delivered %d events, want 1", len(got))
			}
			ev := got[0]
			if ev.Token != tok || !ev.BearerHeader || ev.MessageID != "msg-"+tt.name {
				t.Errorf("delivered %+v, want msg-%s with the token in the scope and the Authorization header", ev, tt.name)
			}
			body := decode(t, ev.Body)
			scope := scopeAt(body, tt.scopeAt)
			if diff := cmp.Diff(map[string]any{"type": "BearerToken", "token": tok}, scope); diff != "" {
				t.Errorf("%s.scope (-want +got):\n%s", tt.scopeAt, diff)
			}
			// Without the scope, the event is the message as submitted.
			if diff := cmp.Diff(decode(t, message), body); diff != "" {
				t.Errorf("delivered event without its scope (-submitted +delivered):\n%s", diff)
			}
		})
	}
	t.Run("ExactBody", func(t *testing.T) {
		e := startEnv(t, nil)
		tok := e.token(t, user)
		message := `{"event":{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"m-1","payloadVersion":"3"},` +
			`"endpoint":{"endpointId":"e-1","cookie":{"k":"a<b&c"}},"payload":{"n":1.50}}}`
		if err := e.newGateway(t, alexa.Options{}).Send(t.Context(), "", tok, []byte(message)); err != nil {
			t.Fatal(err)
		}
		want := `{"event":{"endpoint":{"cookie":{"k":"a<b&c"},"endpointId":"e-1","scope":{"type":"BearerToken","token":"` + string(tok) + `"}},` +
			`"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"m-1","payloadVersion":"3"},"payload":{"n":1.50}}}`
		if got := string(e.alexa.Events().Received(user)[0].Body); got != want {
			t.Errorf("body =\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("TooLargeWithToken", func(t *testing.T) {
		var requests atomic.Int32
		base := startHostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			w.WriteHeader(http.StatusAccepted)
		}))
		pad := strings.Repeat("x", reports.MaxAlexaEventBytes-len(fmt.Sprintf(changeReport, "m"))-len(`,"pad":""`))
		message := strings.Replace(fmt.Sprintf(changeReport, "m"), `"payload": {`, `"payload": {"pad":"`+pad+`",`, 1)
		if err := reports.CheckAlexaEvent([]byte(message)); err != nil {
			t.Fatalf("the message itself is refused: %v", err)
		}
		tok := "Atza|" + strings.Repeat("t", 5<<10) // longer than LWA's, to pass the limit
		err := env{}.newGateway(t, alexa.Options{BaseURL: base}).Send(t.Context(), "", tokens.Secret(tok), []byte(message))
		wantInvalid("more than the 262144 bytes the Alexa Event Gateway takes")(t, err)
		assertNoSecret(t, err, tok)
		if got := requests.Load(); got != 0 {
			t.Errorf("requests = %d, want none", got)
		}
	})
}

// cmpOr returns s, or def when s is empty.
func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// wantAll returns a check that runs every one of checks.
func wantAll(checks ...func(testing.TB, error)) func(testing.TB, error) {
	return func(tb testing.TB, err error) {
		tb.Helper()
		for _, c := range checks {
			c(tb, err)
		}
	}
}

// wantMessage returns a check that err's message, as callers see it, contains
// s.
func wantMessage(s string) func(testing.TB, error) {
	return func(tb testing.TB, err error) {
		tb.Helper()
		if msg := tokens.ErrorMessage(err); !strings.Contains(msg, s) {
			tb.Errorf("message = %q, want it to contain %q", msg, s)
		}
	}
}

// wantReason returns a check that err is a *reports.RetryError whose Reason
// names the Event Gateway and contains s.
func wantReason(s string) func(testing.TB, error) {
	return func(tb testing.TB, err error) {
		tb.Helper()
		re, ok := err.(*reports.RetryError)
		if !ok || !strings.Contains(re.Reason, s) || !strings.HasPrefix(re.Reason, "Alexa Event Gateway: ") {
			tb.Errorf("err = %v, want a RetryError from the Alexa Event Gateway whose Reason contains %q", err, s)
		}
	}
}

func TestEventGateway_SendRegions(t *testing.T) {
	e := startEnv(t, nil)
	tests := []struct {
		name    string
		regions map[string]string
		region  string
		want    string // the region the simulator recorded
	}{
		{name: "RegionalHosts/Default", regions: e.alexa.RegionURLs(), region: "", want: ""},
		{name: "RegionalHosts/NA", regions: e.alexa.RegionURLs(), region: "NA", want: "NA"},
		{name: "RegionalHosts/EU", regions: e.alexa.RegionURLs(), region: "EU", want: "EU"},
		{name: "RegionalHosts/eu", regions: e.alexa.RegionURLs(), region: "eu", want: "EU"},
		{name: "RegionalHosts/FE", regions: e.alexa.RegionURLs(), region: "FE", want: "FE"},
		{name: "RegionalHosts/Unknown", regions: e.alexa.RegionURLs(), region: "XX", want: ""},
		{name: "OneHost/EU", regions: alexa.RegionsFor(e.alexa.URL()), region: "EU", want: ""},
		{name: "OneHost/FE", regions: alexa.RegionsFor(e.alexa.URL()), region: "FE", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := "user-" + strings.ReplaceAll(tt.name, "/", "-")
			g := e.newGateway(t, alexa.Options{Regions: tt.regions})
			for _, format := range []string{changeReport, addOrUpdate} {
				if err := g.Send(t.Context(), tt.region, e.token(t, user), fmt.Appendf(nil, format, "m")); err != nil {
					t.Fatal(err)
				}
			}
			got := e.alexa.Events().Received(user)
			if len(got) != 2 {
				t.Fatalf("delivered %d events, want 2", len(got))
			}
			for _, ev := range got {
				if ev.Region != tt.want {
					t.Errorf("%s went to region %q, want %q", ev.Name, ev.Region, tt.want)
				}
			}
		})
	}
}

func TestNewEventGateway(t *testing.T) {
	tests := []struct {
		name     string
		opts     alexa.Options
		wantErr  bool
		region   string
		endpoint string
	}{
		{name: "Defaults", endpoint: "https://api.amazonalexa.com/v3/events"},
		{name: "DefaultRegionsNA", opts: alexa.Options{Regions: alexa.RegionsFor(alexa.DefaultBaseURL)}, region: "NA", endpoint: "https://api.amazonalexa.com/v3/events"},
		{name: "DefaultRegionsEU", opts: alexa.Options{Regions: alexa.RegionsFor(alexa.DefaultBaseURL)}, region: "EU", endpoint: "https://api.eu.amazonalexa.com/v3/events"},
		{name: "DefaultRegionsFE", opts: alexa.Options{Regions: alexa.RegionsFor(alexa.DefaultBaseURL)}, region: "fe", endpoint: "https://api.fe.amazonalexa.com/v3/events"},
		{name: "OtherHostServesEveryRegion", opts: alexa.Options{BaseURL: "http://127.0.0.1:9302", Regions: alexa.RegionsFor("http://127.0.0.1:9302")}, region: "EU", endpoint: "http://127.0.0.1:9302/v3/events"},
		{name: "PathPrefix", opts: alexa.Options{BaseURL: "http://127.0.0.1:8081/alexa/"}, endpoint: "http://127.0.0.1:8081/alexa/v3/events"},
		{name: "RelativeBaseURL", opts: alexa.Options{BaseURL: "/v3"}, wantErr: true},
		{name: "Credentials", opts: alexa.Options{BaseURL: "https://user:SHOULD-NOT-LEAK@api.amazonalexa.com"}, wantErr: true},
		{name: "BadRegionURL", opts: alexa.Options{Regions: map[string]string{"EU": "api.eu.amazonalexa.com"}}, wantErr: true},
		{name: "EmptyRegionName", opts: alexa.Options{Regions: map[string]string{"": "https://api.eu.amazonalexa.com"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := alexa.NewEventGateway(tt.opts)
			if tt.wantErr {
				if got := tokens.ErrorCode(err); got != tokens.EINVALID {
					t.Fatalf("NewEventGateway = %v (code %q), want an EINVALID error", err, got)
				}
				assertNoSecret(t, err, "SHOULD-NOT-LEAK")
				return
			}
			if err != nil {
				t.Fatalf("NewEventGateway: %v", err)
			}
			if got := g.Endpoint(tt.region); got != tt.endpoint {
				t.Errorf("Endpoint(%q) = %q, want %q", tt.region, got, tt.endpoint)
			}
		})
	}
}

func TestEventGateway_SendNoAnswer(t *testing.T) {
	message := fmt.Appendf(nil, changeReport, "m")
	t.Run("SlowBeyondDeadline", func(t *testing.T) {
		e := startEnv(t, nil)
		tok := e.token(t, "u")
		e.alexa.Events().SetDelay(time.Hour)
		err := e.newGateway(t, alexa.Options{}).Send(contextWithTimeout(t, 100*time.Millisecond), "", tok, message)
		re := assertRetry(t, err, 0, 0)
		if !strings.Contains(re.Reason, "deadline") {
			t.Errorf("Reason = %q, want it to mention the deadline", re.Reason)
		}
		assertNoSecret(t, err, string(tok))
		if got := e.alexa.Events().Received("u"); got != nil {
			t.Errorf("received %d events, want none", len(got))
		}
	})
	t.Run("HTTPClientTimeout", func(t *testing.T) {
		e := startEnv(t, nil)
		tok := e.token(t, "u")
		e.alexa.Events().SetDelay(time.Hour)
		g := e.newGateway(t, alexa.Options{HTTPClient: &http.Client{Timeout: 100 * time.Millisecond}})
		re := assertRetry(t, g.Send(t.Context(), "", tok, message), 0, 0)
		if !strings.Contains(re.Reason, "in time") {
			t.Errorf("Reason = %q, want a time-out", re.Reason)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		e := startEnv(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		re := assertRetry(t, e.newGateway(t, alexa.Options{}).Send(ctx, "", "Atza|x", message), 0, 0)
		if !strings.Contains(re.Reason, "cancelled") {
			t.Errorf("Reason = %q, want a cancellation", re.Reason)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		const tok = "Atza|IQEBunreachable-SHOULD-NOT-LEAK"
		g := env{}.newGateway(t, alexa.Options{BaseURL: amazontest.ClosedURL(t)})
		err := g.Send(contextWithTimeout(t, 5*time.Second), "EU", tok, message)
		assertRetry(t, err, 0, 0)
		assertNoSecret(t, err, tok, "SHOULD-NOT-LEAK")
	})
}

// TestEventGateway_ErrorsHideSecrets runs Send against a hostile gateway that
// quotes the request, token included, back in its answers, and checks that no
// error repeats the token.
func TestEventGateway_ErrorsHideSecrets(t *testing.T) {
	const tok = "Atza|IQEBhostile-SHOULD-NOT-LEAK"
	tests := []struct {
		name   string
		status int
		format string // the JSON answer; %s is the quoted request
		check  func(testing.TB, error)
	}{
		{name: "BadRequest", status: 400, format: `{"header":{"namespace":"System","name":"Exception","messageId":"x"},"payload":{"code":"INVALID_REQUEST_EXCEPTION","description":"bad: %s"}}`, check: wantInvalid("400 Bad Request: INVALID_REQUEST_EXCEPTION: bad:")},
		{name: "CodeIsTheToken", status: 403, format: `{"payload":{"code":"%s","description":"%s"}}`, check: wantInvalid("403 Forbidden")},
		{name: "NotFound", status: 404, format: `{"payload":{"code":"SKILL_NOT_FOUND_EXCEPTION","description":"%s"}}`, check: wantInvalid("404 Not Found: SKILL_NOT_FOUND_EXCEPTION")},
		{name: "Unauthorized", status: 401, format: `{"payload":{"code":"INVALID_ACCESS_TOKEN_EXCEPTION","description":"%s"}}`, check: wantIs(reports.ErrTokenRejected, tokens.EUNAUTHENTICATED)},
		{name: "Forbidden", status: 403, format: `{"payload":{"code":"SKILL_DISABLED_EXCEPTION","description":"%s"}}`, check: wantIs(reports.ErrPermissionWithdrawn, tokens.EPERMISSION)},
		{name: "Throttled", status: 429, format: `{"payload":{"code":"THROTTLING_EXCEPTION","description":"%s"}}`, check: wantRetry(429, 0)},
		{name: "ServerError", status: 500, format: `{"payload":{"code":"%s"}}`, check: wantRetry(500, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := startHostile(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				echo := strings.NewReplacer(`"`, `'`, "\n", " ").Replace(r.Header.Get("Authorization") + " " + string(body))
				if tt.name == "CodeIsTheToken" {
					echo = tok
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, strings.ReplaceAll(tt.format, "%s", "%[1]s"), echo)
			}))
			err := env{}.newGateway(t, alexa.Options{BaseURL: base}).Send(t.Context(), "", tok, fmt.Appendf(nil, changeReport, "m"))
			t.Logf("Send: %v", err)
			tt.check(t, err)
			assertNoSecret(t, err, tok, "SHOULD-NOT-LEAK", "thermostat", "targetSetpoint")
		})
	}
}

func TestEventGateway_SendConcurrent(t *testing.T) {
	e := startEnv(t, nil)
	g := e.newGateway(t, alexa.Options{Regions: e.alexa.RegionURLs()})
	const users, each = 6, 3
	toks := make([]tokens.Secret, users)
	for i := range toks {
		toks[i] = e.token(t, fmt.Sprintf("user-%d", i))
	}
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			for n := range each {
				if err := g.Send(t.Context(), "EU", toks[i], fmt.Appendf(nil, changeReport, fmt.Sprintf("m-%d", n))); err != nil {
					t.Errorf("user-%d: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	for i := range users {
		var ids []string
		for _, ev := range e.alexa.Events().Received(fmt.Sprintf("user-%d", i)) {
			ids = append(ids, ev.MessageID)
		}
		if diff := cmp.Diff([]string{"m-0", "m-1", "m-2"}, ids); diff != "" {
			t.Errorf("user-%d's events (-want +got):\n%s", i, diff)
		}
	}
}
