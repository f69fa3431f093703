package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"go.yaml.in/yaml/v3"

	"github.com/reciprocal-broker/broker/api/openapi"
)

// handWrittenRoutes are the routes of the HTTP surface that the gateway does
// not map: Alexa's form endpoint, AcceptGrant, the probes, the metrics and the
// OpenAPI document itself (internal/server/http.go).
var handWrittenRoutes = []string{
	"POST /api/reciprocal/authorize",
	"POST /v1/smart-home/accept-grant",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
	"GET /openapi.json",
}

// gatewayRoutes returns "METHOD /path" for each rule of broker_http.yaml, the
// routes the gateway maps, in OpenAPI's path syntax (which is the rules').
func gatewayRoutes(tb testing.TB) []string {
	tb.Helper()
	raw, err := os.ReadFile("../../api/proto/broker/v1/broker_http.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var config struct {
		HTTP struct {
			Rules []map[string]string `yaml:"rules"`
		} `yaml:"http"`
	}
	if err := yaml.Unmarshal(raw, &config); err != nil {
		tb.Fatal(err)
	}
	var routes []string
	for _, rule := range config.HTTP.Rules {
		n := len(routes)
		for _, method := range []string{"get", "put", "post", "delete", "patch"} {
			if path, ok := rule[method]; ok {
				routes = append(routes, strings.ToUpper(method)+" "+path)
			}
		}
		if len(routes) != n+1 {
			tb.Fatalf("rule %v: want one method and path", rule)
		}
	}
	return routes
}

// openAPI3 checks the OpenAPI 2.0 document raw with kin-openapi, an
// implementation independent of the generator: it must convert to OpenAPI 3
// and that must validate.
func openAPI3(tb testing.TB, raw []byte) *openapi3.T {
	tb.Helper()
	var doc2 openapi2.T
	if err := json.Unmarshal(raw, &doc2); err != nil {
		tb.Fatalf("the document is not OpenAPI 2.0 JSON: %v", err)
	}
	if doc2.Swagger != "2.0" {
		tb.Fatalf("swagger = %q, want 2.0", doc2.Swagger)
	}
	doc3, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		tb.Fatalf("convert to OpenAPI 3: %v", err)
	}
	if err := doc3.Validate(tb.Context()); err != nil {
		tb.Fatalf("the document, converted to OpenAPI 3, is not valid: %v", err)
	}
	return doc3
}

// documentedRoutes returns "METHOD /path" for each operation of doc.
func documentedRoutes(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

// TestOpenAPI checks the document served at /openapi.json: valid for an
// independent validator, describing exactly the routes of the HTTP surface,
// with the proto's comments, and matching what the broker answers on every
// route.
func TestOpenAPI(t *testing.T) {
	h := newHarness(t)
	req, err := http.NewRequest("GET", h.base+"/openapi.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	status, body, header := h.do(req)
	if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json without a token: %d %s, want 200 application/json", status, header.Get("Content-Type"))
	}
	if !bytes.Equal([]byte(body), openapi.JSON()) {
		t.Fatal("GET /openapi.json is not the embedded document")
	}
	doc := openAPI3(t, []byte(body))
	ops := documentedRoutes(doc)

	t.Run("routes", func(t *testing.T) {
		want := append(gatewayRoutes(t), handWrittenRoutes...)
		got := slices.Sorted(func(yield func(string) bool) {
			for r := range ops {
				if !yield(r) {
					return
				}
			}
		})
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("documented routes:\n  %s\nwant the HTTP surface's:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	})

	t.Run("descriptions", func(t *testing.T) {
		// The gateway's operations carry the proto's comments: the summary is
		// the rpc's first paragraph, its tag the service's comment.
		for _, r := range gatewayRoutes(t) {
			op := ops[r]
			if op == nil {
				continue // reported by routes
			}
			if !regexp.MustCompile(`^[A-Z][A-Za-z]+ `).MatchString(op.Summary) {
				t.Errorf("%s: summary %q is not the rpc's comment", r, op.Summary)
			}
			if len(op.Tags) != 1 {
				t.Errorf("%s: tags %v, want the service", r, op.Tags)
				continue
			}
			if tag := doc.Tags.Get(op.Tags[0]); tag == nil || !strings.HasPrefix(tag.Description, op.Tags[0]+" ") {
				t.Errorf("%s: the tag %s has no description from the service's comment", r, op.Tags[0])
			}
		}
		for _, name := range []string{"Link", "GetPartnerTokenRequest", "ProfileReport"} {
			s := doc.Components.Schemas[name]
			if s == nil || s.Value.Description == "" || s.Value.Properties["skill_id"] == nil || s.Value.Properties["skill_id"].Value.Description == "" {
				t.Errorf("schema %s lacks the proto's comments or its proto field names", name)
			}
		}
	})

	t.Run("answers", func(t *testing.T) {
		testOpenAPIAnswers(t, h, doc, ops)
	})
}

// testOpenAPIAnswers calls every documented route of the running broker, with
// successes and failures, and checks each request and answer against doc with
// kin-openapi's openapi3filter: the route is found, the status is documented,
// the body matches its schema.
func testOpenAPIAnswers(t *testing.T, h *harness, doc *openapi3.T, ops map[string]*openapi3.Operation) {
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	tokensJWT := h.clientToken("broker:tokens")
	profilesJWT := h.clientToken("broker:profiles")
	eventsJWT := h.clientToken("broker:events")
	adminJWT := h.clientToken("broker:admin")
	const user, homeUser = "openapi-user", "openapi-home"
	form := func(v url.Values) string { return v.Encode() }
	directive := func(code, token string) string {
		return `{"directive":{"header":{"namespace":"Alexa.Authorization","name":"AcceptGrant","messageId":"m-1","payloadVersion":"3"},` +
			`"payload":{"grant":{"type":"OAuth2.AuthorizationCode","code":"` + code + `"},"grantee":{"type":"BearerToken","token":"` + token + `"}}}}`
	}
	alexaEvent := `{"user_id":"` + user + `","event":{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"openapi-event-1","payloadVersion":"3"},` +
		`"endpoint":{"endpointId":"thermostat"},"payload":{"change":{"cause":{"type":"PHYSICAL_INTERACTION"},"properties":[]}}}}`
	report := jenny(user, "openapi-report-1")

	calls := []struct {
		method, path, token, contentType, body string
		want                                   int
	}{
		{"GET", "/healthz", "", "", "", 200},
		{"GET", "/readyz", "", "", "", 200},
		{"GET", "/metrics", "", "", "", 200},
		{"GET", "/openapi.json", "", "", "", 200},
		// A form without a code: the document refuses the request too.
		{"POST", "/api/reciprocal/authorize", "", "application/x-www-form-urlencoded", form(url.Values{"grant_type": {"reciprocal_authorization_code"}, "client_id": {alexaClient}}), 400},
		{"POST", "/api/reciprocal/authorize", h.userToken(user), "application/x-www-form-urlencoded",
			form(url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor(user)}, "client_id": {alexaClient}}), 200},
		{"POST", "/v1/smart-home/accept-grant", "", "application/json", directive(h.sims.LWA.IssueCodeFor(homeUser), h.userToken(homeUser)), 200},
		{"POST", "/v1/smart-home/accept-grant", "", "application/json", directive("code", "not-a-jwt"), 401},
		{"POST", "/v1/partner-token", tokensJWT, "application/json", `{"user_id":"` + user + `"}`, 200},
		{"POST", "/v1/partner-token", tokensJWT, "application/json", `{"user_id":"nobody"}`, 404},
		{"POST", "/v1/partner-token", "", "application/json", `{"user_id":"` + user + `"}`, 401},
		{"POST", "/v1/profile-reports", profilesJWT, "application/json", report, 202},
		{"GET", "/v1/profile-reports/openapi-report-1", profilesJWT, "", "", 200},
		{"POST", "/v1/alexa-events", eventsJWT, "application/json", alexaEvent, 202},
		{"GET", "/v1/alexa-events/openapi-event-1", eventsJWT, "", "", 200},
		{"GET", "/v1/links/" + user, tokensJWT, "", "", 200},
		{"GET", "/v1/links?page_size=10&state=LINKED", adminJWT, "", "", 200},
		{"POST", "/v1/links/" + user + ":refresh", adminJWT, "", "", 200},
		{"GET", "/v1/links/" + user + "/events", adminJWT, "", "", 200},
		{"GET", "/v1/events?type=link.linked", adminJWT, "", "", 200},
		{"GET", "/v1/stats", adminJWT, "", "", 200},
		{"GET", "/v1/stats?skill_id=default", adminJWT, "", "", 200},
		{"GET", "/v1/stats?skill_id=garden", adminJWT, "", "", 400},
		{"GET", "/v1/pending-deliveries?kind=profile_report&page_size=10", adminJWT, "", "", 200},
		{"GET", "/v1/pending-deliveries?user_id=" + user, adminJWT, "", "", 200},
		{"GET", "/v1/links?user_id_prefix=openapi-", adminJWT, "", "", 200},
		{"DELETE", "/v1/links/" + homeUser + "?reason=user_request", adminJWT, "", "", 200},
		{"DELETE", "/v1/links/" + homeUser, adminJWT, "", "", 404},
	}
	called := map[string]bool{}
	for _, c := range calls {
		req, err := http.NewRequest(c.method, h.base+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		name := c.method + " " + c.path
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s: not a documented route: %v", name, err)
			continue
		}
		called[c.method+" "+route.Path] = true
		in := &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true},
		}
		invalid := c.want == http.StatusBadRequest && c.path == "/api/reciprocal/authorize"
		if err := openapi3filter.ValidateRequest(t.Context(), in); (err != nil) != invalid {
			t.Errorf("%s: the request's check against the document: %v, want an error %v", name, err, invalid)
		}
		// ValidateRequest read the body: send it again.
		req.Body = io.NopCloser(strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, answer, c.want)
		}
		// A success must be documented by its own status, not only match the
		// gateway operations' default (error) answer.
		if resp.StatusCode < 300 && route.Operation.Responses.Status(resp.StatusCode) == nil {
			t.Errorf("%s: answered %d, which the document does not list", name, resp.StatusCode)
		}
		err = openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
			Body: io.NopCloser(bytes.NewReader(answer)), Options: in.Options,
		})
		if err != nil {
			t.Errorf("%s: the answer %d %s does not match the document: %v", name, resp.StatusCode, answer, err)
		}
	}
	for r := range ops {
		if !called[r] {
			t.Errorf("%s: documented, not called by this test", r)
		}
	}
}
