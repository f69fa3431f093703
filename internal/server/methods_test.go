package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/server"
)

// TestServer_MethodNotAllowed: a method that a route of the API does not take
// is answered 405 with the route's methods in Allow, and the gateway's JSON
// status; a path of no route stays 404, and the methods a route takes reach
// its handler.
func TestServer_MethodNotAllowed(t *testing.T) {
	s := open(t, server.Options{})
	for _, tc := range []struct {
		name, method, path string
		wantStatus         int
		wantAllow          string
	}{
		{"PutOnLink", "PUT", "/v1/links/u1", 405, "GET, DELETE"},
		{"PostOnLink", "POST", "/v1/links/u1", 405, "GET, DELETE"},
		{"GetOnRefresh", "GET", "/v1/links/u1:refresh", 0, ""}, // also the link of user "u1:refresh"
		{"DeleteOnRefresh", "DELETE", "/v1/links/u1:refresh", 0, ""},
		{"PatchOnRefresh", "PATCH", "/v1/links/u1:refresh", 405, "GET, POST, DELETE"},
		{"GetOnPartnerToken", "GET", "/v1/partner-token", 405, "POST"},
		{"DeleteOnReports", "DELETE", "/v1/profile-reports", 405, "POST"},
		{"PostOnReport", "POST", "/v1/profile-reports/m1", 405, "GET"},
		{"PostOnEvents", "POST", "/v1/links/u1/events", 405, "GET"},
		{"PostOnStats", "POST", "/v1/stats", 405, "GET"},
		{"PutOnAlexaEvents", "PUT", "/v1/alexa-events", 405, "POST"},
		{"PostOnHealthz", "POST", "/healthz", 405, "GET"},
		{"PostOnMetrics", "POST", "/metrics", 405, "GET"},
		{"EscapedSlashInID", "PUT", "/v1/links/a%2Fb", 405, "GET, DELETE"},
		{"UnknownPath", "GET", "/v1/nothing", 404, ""},
		{"EmptyID", "PUT", "/v1/links/", 405, "GET, DELETE"},
		{"BareVerb", "PUT", "/v1/links/:refresh", 405, "GET, DELETE"},
		{"TooDeep", "PUT", "/v1/links/u1/events/e1", 404, ""},
		{"AllowedGet", "GET", "/v1/links/u1", 0, ""},
		{"AllowedDelete", "DELETE", "/v1/links/u1", 0, ""},
		{"AllowedPost", "POST", "/v1/partner-token", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, s, tc.method, tc.path, "")
			if tc.wantStatus == 0 {
				if resp.StatusCode == 405 || resp.StatusCode == 404 {
					t.Errorf("%s %s = %d %s, want it to reach its handler", tc.method, tc.path, resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.wantStatus)
			}
			if got := resp.Header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			var status struct {
				Code    *int    `json:"code"`
				Message *string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &status); err != nil || status.Code == nil || status.Message == nil {
				t.Errorf("body %q is not the gateway's JSON status: %v", body, err)
			}
			if tc.wantStatus == 405 && !strings.Contains(*status.Message, tc.wantAllow) {
				t.Errorf("message %q does not name the allowed methods", *status.Message)
			}
		})
	}
}

// TestServer_MethodNotAllowed_Form: a POST of an HTML form reaches a GET
// route, or the route of its X-HTTP-Method-Override method, as the gateway
// serves those (grpc-gateway's path length fallback); one to a route of
// neither is 405.
func TestServer_MethodNotAllowed_Form(t *testing.T) {
	s := open(t, server.Options{})
	for _, tc := range []struct {
		name, path, override string
		want405              bool
	}{
		{"AsGet", "/v1/stats", "", false},
		{"Override", "/v1/links/u1", "DELETE", false},
		{"OverrideNotAllowed", "/v1/partner-token", "DELETE", true},
		{"PostRouteNoGet", "/v1/partner-token", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", "http://"+s.HTTPAddr()+tc.path, strings.NewReader("a=b"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+adminToken)
			if tc.override != "" {
				req.Header.Set("X-HTTP-Method-Override", tc.override)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.StatusCode == http.StatusMethodNotAllowed; got != tc.want405 {
				t.Errorf("status = %d, want 405: %v", resp.StatusCode, tc.want405)
			}
		})
	}
}

// TestServer_BearerChallenge: a 401 of the API carries RFC 6750's challenge,
// bare without a bearer token, with error="invalid_token" for a refused one;
// other answers carry none.
func TestServer_BearerChallenge(t *testing.T) {
	s := open(t, server.Options{})
	for _, tc := range []struct {
		name, authorization string
		wantStatus          int
		wantChallenge       string
	}{
		{"NoToken", "", 401, "Bearer"},
		{"OtherScheme", "Basic YWxleGE6c2VjcmV0", 401, "Bearer"},
		{"BearerWithoutToken", "Bearer", 401, "Bearer"},
		{"BearerTwoTokens", "Bearer expired " + adminToken, 401, "Bearer"},
		{"RefusedToken", "Bearer expired", 401, `Bearer error="invalid_token"`},
		{"LowerCaseScheme", "bearer expired", 401, `Bearer error="invalid_token"`},
		{"AcceptedToken", "Bearer " + adminToken, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/v1/links/u1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.wantStatus != 0 && resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus == 0 && resp.StatusCode == 401 {
				t.Fatalf("status = 401 %s for an accepted token", body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.wantChallenge)
			}
		})
	}
}
