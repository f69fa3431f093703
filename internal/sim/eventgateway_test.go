package sim_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// changeReport is samples/event-gateway-change-report.json with %s for the
// access token and messageId "%s" too: fmt.Sprintf(changeReport, token, id).
const changeReport = `{
  "event": {
    "header": {"namespace": "Alexa", "name": "ChangeReport", "messageId": "%[2]s", "payloadVersion": "3"},
    "endpoint": {"scope": {"type": "BearerToken", "token": "%[1]s"}, "endpointId": "thermostat-livingroom"},
    "payload": {"change": {"cause": {"type": "PHYSICAL_INTERACTION"}, "properties": [{"namespace": "Alexa.ThermostatController",
      "name": "targetSetpoint", "value": {"value": 21.5, "scale": "CELSIUS"}, "timeOfSample": "2026-12-01T10:00:00.00Z", "uncertaintyInMilliseconds": 500}]}}
  },
  "context": {"properties": [{"namespace": "Alexa.EndpointHealth", "name": "connectivity", "value": {"value": "OK"},
    "timeOfSample": "2026-12-01T10:00:00.00Z", "uncertaintyInMilliseconds": 0}]}
}`

// addOrUpdate is an Alexa.Discovery AddOrUpdateReport, its scope in the
// payload: fmt.Sprintf(addOrUpdate, token, id).
const addOrUpdate = `{
  "event": {
    "header": {"namespace": "Alexa.Discovery", "name": "AddOrUpdateReport", "messageId": "%[2]s", "payloadVersion": "3"},
    "payload": {"endpoints": [{"endpointId": "light-1", "friendlyName": "Hall light", "displayCategories": ["LIGHT"],
      "capabilities": [{"type": "AlexaInterface", "interface": "Alexa", "version": "3"}]}],
      "scope": {"type": "BearerToken", "token": "%[1]s"}}
  }
}`

// gatewayAnswer is a decoded answer of the Event Gateway.
type gatewayAnswer struct {
	Status int
	Header http.Header
	// Exception is the decoded error answer; zero for an empty body.
	Exception struct {
		Header  struct{ Namespace, Name, MessageID string }
		Payload struct{ Code, Description string }
	}
}

// sendEvent posts body to the Event Gateway below path prefix ("" or a region
// prefix such as "/eu"), as JSON, with Authorization: Bearer bearer when
// bearer is not empty.
func (e alexaEnv) sendEvent(tb testing.TB, prefix, bearer, body string) gatewayAnswer {
	tb.Helper()
	a, err := gatewayDo(tb.Context(), http.MethodPost, e.alexa.URL()+prefix+sim.AlexaEventsPath, "application/json", bearer, body)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// gatewayDo sends one request to the gateway and decodes the answer. It does
// not stop the test, so goroutines may call it.
func gatewayDo(ctx context.Context, method, target, contentType, bearer, body string) (gatewayAnswer, error) {
	resp, raw, err := send(ctx, method, target, contentType, bearer, body)
	if err != nil {
		return gatewayAnswer{}, err
	}
	a := gatewayAnswer{Status: resp.StatusCode, Header: resp.Header}
	if len(raw) > 0 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			return a, fmt.Errorf("answer has Content-Type %q: %s", ct, raw)
		}
		if err := json.Unmarshal(raw, &a.Exception); err != nil {
			return a, errors.New("answer is not a JSON object: " + string(raw))
		}
	}
	return a, nil
}

// assertException fails unless a is the gateway's error answer with status and
// code, whose description contains desc.
func assertException(tb testing.TB, a gatewayAnswer, status int, code, desc string) {
	tb.Helper()
	if a.Status != status || a.Exception.Payload.Code != code {
		tb.Fatalf("answer = %d %+v, want %d %s", a.Status, a.Exception, status, code)
	}
	h := a.Exception.Header
	if h.Namespace != "System" || h.Name != "Exception" || uuid.Validate(h.MessageID) != nil {
		tb.Errorf("header = %+v, want System.Exception with a UUID messageId", h)
	}
	if !strings.Contains(a.Exception.Payload.Description, desc) {
		tb.Errorf("description = %q, want it to contain %q", a.Exception.Payload.Description, desc)
	}
}

// eventWith returns changeReport with token and id, changed by mod, which
// edits its decoded form.
func eventWith(tb testing.TB, token, id string, mod func(m map[string]any)) string {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(fmt.Appendf(nil, changeReport, token, id), &m); err != nil {
		tb.Fatal(err)
	}
	mod(m)
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// at returns the object at path below m ("event.header").
func at(m map[string]any, path string) map[string]any {
	for _, k := range strings.Split(path, ".") {
		m = m[k].(map[string]any)
	}
	return m
}

func TestEventGateway_Deliver(t *testing.T) {
	tests := []struct {
		name     string
		format   string // changeReport or addOrUpdate
		prefix   string // the path prefix posted to
		bearer   bool   // also send Authorization: Bearer
		region   string
		endpoint string
	}{
		{name: "ChangeReport", format: changeReport, bearer: true, endpoint: "thermostat-livingroom"},
		{name: "ScopeOnly", format: changeReport, endpoint: "thermostat-livingroom"},
		{name: "AddOrUpdateReport", format: addOrUpdate, bearer: true},
		{name: "RegionNA", format: changeReport, prefix: "/na", region: "NA", endpoint: "thermostat-livingroom"},
		{name: "RegionEU", format: changeReport, prefix: "/eu", region: "EU", endpoint: "thermostat-livingroom"},
		{name: "RegionFE", format: addOrUpdate, prefix: "/fe", region: "FE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAlexa(t, nil)
			tok := e.token(t, "user-1")
			body := fmt.Sprintf(tt.format, tok, "m-1")
			bearer := ""
			if tt.bearer {
				bearer = tok
			}
			a := e.sendEvent(t, tt.prefix, bearer, body)
			if a.Status != http.StatusAccepted {
				t.Fatalf("status = %d %+v, want 202", a.Status, a.Exception)
			}
			got := e.alexa.Events().Received("user-1")
			if len(got) != 1 {
				t.Fatalf("Received = %d events, want 1", len(got))
			}
			ev := got[0]
			name := "ChangeReport"
			if tt.format == addOrUpdate {
				name = "AddOrUpdateReport"
			}
			if ev.Name != name || ev.MessageID != "m-1" || ev.Region != tt.region || ev.EndpointID != tt.endpoint ||
				ev.Token != tok || ev.BearerHeader != tt.bearer || string(ev.Body) != body || !ev.At.Equal(e.clock.Now()) {
				t.Errorf("Received[0] = %+v, want %s m-1 in region %q of endpoint %q with the token", ev, name, tt.region, tt.endpoint)
			}
			if got, want := e.alexa.Events().Stats(), (sim.AlexaStats{Requests: 1, Delivered: 1}); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
			if got := e.alexa.Stats(); got != (sim.AlexaStats{}) {
				t.Errorf("the Health API counted %+v, want nothing", got)
			}
		})
	}
	t.Run("ArrivalOrderPerUser", func(t *testing.T) {
		e := startAlexa(t, nil)
		tokA, tokB := e.token(t, "a"), e.token(t, "b")
		for i, id := range []string{"m1", "m2", "m3"} {
			tok := tokA
			if i == 1 {
				tok = tokB
			}
			if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, id)); a.Status != http.StatusAccepted {
				t.Fatalf("%s: %d %+v", id, a.Status, a.Exception)
			}
		}
		var ids []string
		for _, ev := range e.alexa.Events().Received("a") {
			ids = append(ids, ev.MessageID)
		}
		if want := []string{"m1", "m3"}; !slices.Equal(ids, want) {
			t.Errorf("Received(a) = %q, want %q", ids, want)
		}
		if got := e.alexa.Events().Received("b"); len(got) != 1 || got[0].MessageID != "m2" {
			t.Errorf("Received(b) = %+v, want m2 only", got)
		}
		if got := e.alexa.Events().Received("nobody"); got != nil {
			t.Errorf("Received(nobody) = %+v, want nil", got)
		}
	})
	t.Run("ReceivedIsACopy", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m"))
		e.alexa.Events().Received("u")[0].Body[0] = 'X'
		if got := e.alexa.Events().Received("u")[0].Body[0]; got != '{' {
			t.Errorf("Received shares memory with the simulator")
		}
	})
	t.Run("RegionURLs", func(t *testing.T) {
		e := startAlexa(t, nil)
		want := map[string]string{"NA": e.alexa.URL() + "/na", "EU": e.alexa.URL() + "/eu", "FE": e.alexa.URL() + "/fe"}
		got := e.alexa.RegionURLs()
		if len(got) != len(want) {
			t.Fatalf("RegionURLs = %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("RegionURLs[%s] = %q, want %q", k, got[k], v)
			}
		}
		if got, want := e.alexa.RegionURL("eu"), e.alexa.URL()+"/eu"; got != want {
			t.Errorf("RegionURL(eu) = %q, want %q", got, want)
		}
		if got, want := e.alexa.RegionURL("XX"), e.alexa.URL(); got != want {
			t.Errorf("RegionURL(XX) = %q, want %q", got, want)
		}
		// The Health API is served below the region prefixes too.
		tok := e.token(t, "u")
		if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("profile report: %d", a.Status)
		}
		a, err := alexaDo(t.Context(), e.alexa.RegionURL("FE")+sim.AlexaHealthProfilePath, http.MethodPost, "application/json", tok, alexaSample)
		if err != nil || a.Status != http.StatusAccepted {
			t.Fatalf("profile report to FE: %d %v", a.Status, err)
		}
		var regions []string
		for _, r := range e.alexa.Received("u") {
			regions = append(regions, r.Region)
		}
		if want := []string{"", "FE"}; !slices.Equal(regions, want) {
			t.Errorf("report regions = %q, want %q", regions, want)
		}
		for _, path := range []string{"/xx" + sim.AlexaEventsPath, "/eu", "/EU" + sim.AlexaEventsPath, "/v3/events/x"} {
			resp, err := http.Post(e.alexa.URL()+path, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("POST %s = %d, want 404", path, resp.StatusCode)
			}
		}
	})
}

func TestEventGateway_Refused(t *testing.T) {
	const user = "user-1"
	tests := []struct {
		name    string
		prepare func(e alexaEnv)
		// The request body is changeReport for a valid token of user, changed
		// by edit, which edits its decoded form, or, when body is set, what
		// body returns for that token.
		edit        func(m map[string]any)
		body        func(tb testing.TB, tok string) string
		bearer      func(tok string) string // the Authorization bearer; the scope's token when nil
		contentType string                  // "application/json" when empty
		method      string                  // POST when empty
		// The answer: 202, or status with code and a description that
		// contains desc; Stats counts it (countedAs).
		status     int
		code, desc string
	}{
		{
			name:   "NotJSON",
			body:   func(testing.TB, string) string { return `{"event":` },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "not a JSON object",
		},
		{
			name:   "NoEvent",
			body:   func(testing.TB, string) string { return `{"context":{}}` },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event is required",
		},
		{
			name:   "NoHeader",
			edit:   func(m map[string]any) { delete(at(m, "event"), "header") },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.header is required",
		},
		{
			name:   "NoNamespace",
			edit:   func(m map[string]any) { delete(at(m, "event.header"), "namespace") },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.header.namespace is required",
		},
		{
			name:   "NoName",
			edit:   func(m map[string]any) { at(m, "event.header")["name"] = "" },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.header.name is required",
		},
		{
			name:   "NoMessageID",
			edit:   func(m map[string]any) { at(m, "event.header")["messageId"] = "" },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.header.messageId is required",
		},
		{
			name:   "PayloadVersion2",
			edit:   func(m map[string]any) { at(m, "event.header")["payloadVersion"] = "2" },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: `event.header.payloadVersion must be "3"`,
		},
		{
			name:   "PayloadVersionNumber",
			edit:   func(m map[string]any) { at(m, "event.header")["payloadVersion"] = 3 },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.header.payloadVersion has the wrong JSON type",
		},
		{
			name:   "NoPayload",
			edit:   func(m map[string]any) { delete(at(m, "event"), "payload") },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.payload must be an object",
		},
		{
			name:   "ContextNotObject",
			edit:   func(m map[string]any) { m["context"] = "x" },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "context must be an object",
		},
		{
			name:   "NoEndpointID",
			edit:   func(m map[string]any) { delete(at(m, "event.endpoint"), "endpointId") },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.endpoint.endpointId is required",
		},
		{
			name:   "NoScope",
			edit:   func(m map[string]any) { delete(at(m, "event.endpoint"), "scope") },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.endpoint.scope is required",
		},
		{
			name: "ScopeInPayloadOfEndpointEvent",
			edit: func(m map[string]any) {
				at(m, "event.payload")["scope"] = at(m, "event.endpoint")["scope"]
				delete(at(m, "event.endpoint"), "scope")
			},
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.endpoint.scope is required",
		},
		{
			// Amazon reads a discovery report's token from event.payload.scope,
			// whatever else the event holds.
			name: "DiscoveryTokenFromPayload",
			body: func(_ testing.TB, tok string) string {
				return strings.Replace(fmt.Sprintf(addOrUpdate, tok, "m"), `"payload"`, `"endpoint": {"endpointId": "x", "scope": {"type": "BearerToken", "token": "Atza|other"}}, "payload"`, 1)
			},
			status: http.StatusAccepted,
		},
		{
			name: "DiscoveryNoEndpoints",
			body: func(_ testing.TB, tok string) string {
				return strings.Replace(fmt.Sprintf(addOrUpdate, tok, "m"), `"endpoints"`, `"items"`, 1)
			},
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.payload.endpoints is required",
		},
		{
			name:   "ScopeNotBearerToken",
			edit:   func(m map[string]any) { at(m, "event.endpoint.scope")["type"] = "Basic" },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: `event.endpoint.scope.type must be "BearerToken"`,
		},
		{
			name:   "ScopeTokenEmpty",
			edit:   func(m map[string]any) { at(m, "event.endpoint.scope")["token"] = "" },
			bearer: func(string) string { return "" },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "event.endpoint.scope.token is required",
		},
		{
			name:   "BearerDiffersFromScope",
			bearer: func(string) string { return "Atza|other" },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "Authorization",
		},
		{
			name:        "NotJSONContentType",
			contentType: "text/plain",
			status:      http.StatusBadRequest, code: sim.EventInvalidRequest, desc: "Content-Type",
		},
		{
			name:   "MethodGet",
			body:   func(testing.TB, string) string { return "" },
			method: http.MethodGet,
			status: http.StatusMethodNotAllowed, code: sim.EventInvalidRequest, desc: "POST",
		},
		{
			name: "TooLarge",
			edit: func(m map[string]any) {
				at(m, "event.payload")["padding"] = strings.Repeat("x", sim.AlexaEventMaxBytes)
			},
			status: http.StatusRequestEntityTooLarge, code: sim.EventRequestTooLarge, desc: "larger than 262144 bytes",
		},
		{
			name: "TooManyDiscoveryEndpoints",
			body: func(_ testing.TB, tok string) string {
				eps := strings.Repeat(`{"endpointId":"e"},`, sim.AlexaDiscoveryMaxEndpoints) + `{"endpointId":"last"}`
				return fmt.Sprintf(`{"event":{"header":{"namespace":"Alexa.Discovery","name":"DeleteReport","messageId":"m","payloadVersion":"3"},`+
					`"payload":{"endpoints":[%s],"scope":{"type":"BearerToken","token":"%s"}}}}`, eps, tok)
			},
			status: http.StatusRequestEntityTooLarge, code: sim.EventRequestTooLarge, desc: "more than 300 endpoints",
		},
		{
			name:   "TokenUnknown",
			body:   func(testing.TB, string) string { return fmt.Sprintf(changeReport, "Atza|not-issued", "m") },
			bearer: func(string) string { return "" },
			status: http.StatusUnauthorized, code: sim.EventInvalidAccessToken, desc: "invalid",
		},
		{
			name:    "TokenExpired",
			prepare: func(e alexaEnv) { e.clock.Advance(sim.DefaultLWAAccessTokenLifetime) },
			status:  http.StatusUnauthorized, code: sim.EventInvalidAccessToken, desc: "expired",
		},
		{
			name:    "TokenRevokedAtLWA",
			prepare: func(e alexaEnv) { e.lwa.RevokeUser(user) },
			status:  http.StatusUnauthorized, code: sim.EventInvalidAccessToken, desc: "invalid",
		},
		{
			name:    "TokenRejected",
			prepare: func(e alexaEnv) { e.alexa.Events().RejectTokenNext(1) },
			body:    func(_ testing.TB, tok string) string { return fmt.Sprintf(addOrUpdate, tok, "m") },
			status:  http.StatusUnauthorized, code: sim.EventInvalidAccessToken, desc: "invalid",
		},
		{
			name:    "SkillDisabled",
			prepare: func(e alexaEnv) { e.alexa.Events().ForbidUser(user, "") },
			status:  http.StatusForbidden, code: sim.EventSkillDisabled, desc: "disabled",
		},
		{
			name:    "SkillNeverEnabled",
			prepare: func(e alexaEnv) { e.alexa.Events().ForbidUser(user, sim.EventSkillNeverEnabled) },
			body:    func(_ testing.TB, tok string) string { return fmt.Sprintf(addOrUpdate, tok, "m") },
			status:  http.StatusForbidden, code: sim.EventSkillNeverEnabled, desc: "never enabled",
		},
		{
			name:    "InsufficientPermission",
			prepare: func(e alexaEnv) { e.alexa.Events().ForbidUser(user, sim.EventInsufficientPermission) },
			status:  http.StatusForbidden, code: sim.EventInsufficientPermission, desc: "permission",
		},
		{
			name:    "HealthAPIRevocationIsApart",
			prepare: func(e alexaEnv) { e.alexa.RevokeUser(user) },
			status:  http.StatusAccepted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAlexa(t, nil)
			tok := e.token(t, user)
			if tt.prepare != nil {
				tt.prepare(e)
			}
			body := fmt.Sprintf(changeReport, tok, "m")
			switch {
			case tt.body != nil:
				body = tt.body(t, tok)
			case tt.edit != nil:
				body = eventWith(t, tok, "m", tt.edit)
			}
			bearer := tok
			if tt.bearer != nil {
				bearer = tt.bearer(tok)
			}
			method, ct := cmp.Or(tt.method, http.MethodPost), cmp.Or(tt.contentType, "application/json")
			a, err := gatewayDo(t.Context(), method, e.alexa.URL()+sim.AlexaEventsPath, ct, bearer, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.status == http.StatusAccepted {
				if a.Status != http.StatusAccepted {
					t.Fatalf("answer = %d %+v, want 202", a.Status, a.Exception)
				}
			} else {
				assertException(t, a, tt.status, tt.code, tt.desc)
				if d := a.Exception.Payload.Description; strings.Contains(d, tok) || strings.Contains(d, "Atza|") {
					t.Errorf("description %q repeats a token", d)
				}
				if got := e.alexa.Events().Received(user); got != nil {
					t.Errorf("Received = %d events, want none", len(got))
				}
			}
			if got, want := e.alexa.Events().Stats(), countedAs(tt.status); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
		})
	}
}

// countedAs returns the counters of a gateway that answered one request with
// status: Delivered for 202, Unauthorized for 401, Forbidden for 403, and
// Invalid for any other refusal of the request itself.
func countedAs(status int) sim.AlexaStats {
	s := sim.AlexaStats{Requests: 1}
	switch status {
	case http.StatusAccepted:
		s.Delivered = 1
	case http.StatusUnauthorized:
		s.Unauthorized = 1
	case http.StatusForbidden:
		s.Forbidden = 1
	default:
		s.Invalid = 1
	}
	return s
}

func TestEventGateway_Faults(t *testing.T) {
	tests := []struct {
		name       string
		inject     func(g *sim.EventGateway)
		asDate     bool
		status     int
		code       string
		retryAfter string
	}{
		{
			name:   "ServerError",
			inject: func(g *sim.EventGateway) { g.FailNext(1, http.StatusInternalServerError, 0) },
			status: http.StatusInternalServerError, code: sim.EventInternalService,
		},
		{
			name:   "BadGateway",
			inject: func(g *sim.EventGateway) { g.FailNext(1, http.StatusBadGateway, 0) },
			status: http.StatusBadGateway, code: sim.EventInternalService,
		},
		{
			name:   "Unavailable",
			inject: func(g *sim.EventGateway) { g.FailNext(1, http.StatusServiceUnavailable, 1500*time.Millisecond) },
			status: http.StatusServiceUnavailable, code: sim.EventServiceUnavailable, retryAfter: "2",
		},
		{
			name:   "Throttled",
			inject: func(g *sim.EventGateway) { g.ThrottleNext(1, 30*time.Second) },
			status: http.StatusTooManyRequests, code: sim.EventThrottling, retryAfter: "30",
		},
		{
			name:   "ThrottledWithDate",
			inject: func(g *sim.EventGateway) { g.ThrottleNext(1, 90*time.Second) },
			asDate: true,
			status: http.StatusTooManyRequests, code: sim.EventThrottling, retryAfter: "Sun, 01 Jun 2025 12:01:30 GMT",
		},
		{
			name:   "BadRequest",
			inject: func(g *sim.EventGateway) { g.FailNext(1, http.StatusBadRequest, 0) },
			status: http.StatusBadRequest, code: sim.EventInvalidRequest,
		},
		{
			name:   "Unauthorized",
			inject: func(g *sim.EventGateway) { g.FailNext(1, http.StatusUnauthorized, 0) },
			status: http.StatusUnauthorized, code: sim.EventInvalidAccessToken,
		},
		{
			name:   "Forbidden",
			inject: func(g *sim.EventGateway) { g.FailNext(1, http.StatusForbidden, 0) },
			status: http.StatusForbidden, code: sim.EventSkillDisabled,
		},
		{
			name:   "TooLarge",
			inject: func(g *sim.EventGateway) { g.FailNext(1, http.StatusRequestEntityTooLarge, 0) },
			status: http.StatusRequestEntityTooLarge, code: sim.EventRequestTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAlexa(t, func(o *sim.AlexaOptions) { o.RetryAfterAsDate = tt.asDate })
			tok := e.token(t, "u")
			tt.inject(e.alexa.Events())
			a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m"))
			assertException(t, a, tt.status, tt.code, "")
			if got := a.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")); a.Status != http.StatusAccepted {
				t.Fatalf("after the fault: %d %+v", a.Status, a.Exception)
			}
			if got, want := e.alexa.Events().Stats(), (sim.AlexaStats{Requests: 2, Delivered: 1, Faulted: 1}); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("ApartFromTheHealthAPI", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.FailNext(1, http.StatusInternalServerError, 0)
		e.alexa.RejectTokenNext(1)
		if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")); a.Status != http.StatusAccepted {
			t.Fatalf("the Health API's faults struck the gateway: %d %+v", a.Status, a.Exception)
		}
		e.alexa.Events().FailNext(1, http.StatusInternalServerError, 0)
		e.alexa.ClearFaults()
		if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("the gateway's faults struck the Health API: %d", a.Status)
		}
	})
	t.Run("FaultsQueueAndComeFirst", func(t *testing.T) {
		e := startAlexa(t, nil)
		g := e.alexa.Events()
		g.FailNext(1, http.StatusInternalServerError, 0)
		g.ThrottleNext(1, 0)
		for _, want := range []int{http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusBadRequest} {
			if a := e.sendEvent(t, "", "", "not json"); a.Status != want {
				t.Errorf("status = %d, want %d", a.Status, want)
			}
		}
	})
	t.Run("RejectTokenNextCounts", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.Events().RejectTokenNext(2)
		for _, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusAccepted} {
			if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")); a.Status != want {
				t.Errorf("status = %d, want %d", a.Status, want)
			}
		}
	})
	t.Run("RestoreUser", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		g := e.alexa.Events()
		g.ForbidUser("u", sim.EventSkillNeverEnabled)
		g.ClearFaults() // leaves the user forbidden
		if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")); a.Status != http.StatusForbidden {
			t.Fatalf("status = %d, want 403", a.Status)
		}
		g.RestoreUser("u")
		if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")); a.Status != http.StatusAccepted {
			t.Fatalf("after RestoreUser: %d %+v", a.Status, a.Exception)
		}
	})
	t.Run("ClearFaults", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		g := e.alexa.Events()
		g.FailNext(3, http.StatusInternalServerError, 0)
		g.RejectTokenNext(3)
		g.SetDelay(time.Hour)
		g.ClearFaults()
		if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")); a.Status != http.StatusAccepted {
			t.Fatalf("after ClearFaults: %d %+v", a.Status, a.Exception)
		}
	})
	t.Run("DelayEndsWithClient", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.Events().SetDelay(time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := gatewayDo(ctx, http.MethodPost, e.alexa.URL()+sim.AlexaEventsPath, "application/json", tok, fmt.Sprintf(changeReport, tok, "m"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline error", err)
		}
		if got := e.alexa.Events().Received("u"); got != nil {
			t.Errorf("Received = %d events, want none", len(got))
		}
	})
}

func TestFaults_AlexaEvents(t *testing.T) {
	tests := []struct {
		fault  string
		status int
		code   string
	}{
		{fault: "alexa-events:400", status: http.StatusBadRequest, code: sim.EventInvalidRequest},
		{fault: "alexa-events:401", status: http.StatusUnauthorized, code: sim.EventInvalidAccessToken},
		{fault: "alexa-events:403", status: http.StatusForbidden, code: sim.EventSkillDisabled},
		{fault: "alexa-events:429", status: http.StatusTooManyRequests, code: sim.EventThrottling},
		{fault: "alexa-events:5xx", status: http.StatusInternalServerError, code: sim.EventInternalService},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			e := startAlexa(t, nil)
			tok := e.token(t, "parent")
			f := &sim.Faults{LWA: e.lwa, Alexa: e.alexa, User: "parent"}
			msg, err := f.Apply(tt.fault, 1)
			if err != nil || !strings.Contains(msg, "Event Gateway") {
				t.Fatalf("Apply = %q, %v; want a sentence about the Event Gateway", msg, err)
			}
			if !strings.Contains(sim.FaultNames, tt.fault) {
				t.Errorf("FaultNames does not list %s", tt.fault)
			}
			assertException(t, e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")), tt.status, tt.code, "")
			if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
				t.Errorf("the Health API answered %d under an Event Gateway fault", a.Status)
			}
			f.Clear()
			if a := e.sendEvent(t, "", tok, fmt.Sprintf(changeReport, tok, "m")); a.Status != http.StatusAccepted {
				t.Errorf("after Clear: %d %+v", a.Status, a.Exception)
			}
		})
	}
	t.Run("Slow", func(t *testing.T) {
		e := startAlexa(t, nil)
		f := &sim.Faults{LWA: e.lwa, Alexa: e.alexa, User: "parent"}
		if _, err := f.Apply("alexa-events:slow", 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := gatewayDo(ctx, http.MethodPost, e.alexa.URL()+sim.AlexaEventsPath, "application/json", "", "{}"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a slow answer", err)
		}
		f.Clear()
		if a := e.sendEvent(t, "", "", "{}"); a.Status != http.StatusBadRequest {
			t.Errorf("after Clear: %d, want an answer at once", a.Status)
		}
	})
}
