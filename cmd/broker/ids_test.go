package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestIDs_AddressableOverHTTP links users whose ids are awkward in a URL path
// and reaches each on every route its id appears in: GET, DELETE and
// POST …:refresh of /v1/links/{user_id}, and GET /v1/profile-reports/{message_id}
// of a report whose message id is the same string. Each id is sent as one
// percent-encoded path segment, "." and ".." as %2E and %2E%2E.
func TestIDs_AddressableOverHTTP(t *testing.T) {
	h := newHarness(t)
	admin, reports := h.clientToken("broker:admin"), h.clientToken("broker:profiles")
	for _, tt := range []struct {
		name, id string
		path     string // the id in the path; "" for pathSegment(id)
	}{
		{"Slash", "a/b", ""},
		{"TwoSlashes", "a//b/", ""},
		{"DotDot", "..", ""},
		{"Dot", ".", ""},
		{"EscapedSlash", "a%2Fb", ""},
		{"Percent", "100%", ""},
		{"Space", "a b", ""},
		{"Umlaut", "ü", ""},
		{"Colon", "a:b", ""},
		{"ColonEscaped", "a:c", "a%3Ac"},
		{"VerbLike", "x:refresh", ""},
		{"QueryAndFragment", "a?b#c", ""},
		{"Plus", "a+b=c&d", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seg := tt.path
			if seg == "" {
				seg = pathSegment(tt.id)
			}
			h.link(tt.id)

			status, body := h.call("GET", "/v1/links/"+seg, admin, "")
			if status != http.StatusOK || userIDOf(t, body) != tt.id {
				t.Fatalf("GET /v1/links/%s = %d %s, want 200 with user_id %q", seg, status, body, tt.id)
			}
			status, body = h.call("POST", "/v1/links/"+seg+":refresh", admin, "")
			if status != http.StatusOK || userIDOf(t, body) != tt.id {
				t.Fatalf("POST /v1/links/%s:refresh = %d %s, want 200 with user_id %q", seg, status, body, tt.id)
			}

			id := h.submit(reports, reportBody(tt.id, tt.id))
			if id != tt.id {
				t.Fatalf("submitted report has message id %q, want %q", id, tt.id)
			}
			if v := h.report(reports, seg); v.MessageID != tt.id || v.UserID != tt.id {
				t.Fatalf("GET /v1/profile-reports/%s = message %q of user %q, want %q of %q", seg, v.MessageID, v.UserID, tt.id, tt.id)
			}

			if status, body := h.call("DELETE", "/v1/links/"+seg, admin, ""); status != http.StatusOK {
				t.Fatalf("DELETE /v1/links/%s = %d %s, want 200", seg, status, body)
			}
			if status, body := h.call("GET", "/v1/links/"+seg, admin, ""); status != http.StatusNotFound {
				t.Fatalf("GET /v1/links/%s after DELETE = %d %s, want 404", seg, status, body)
			}
		})
	}
}

// TestIDs_NotUTF8Refused: a path or query that is not UTF-8 once decoded names
// no id the broker accepts (ids are UTF-8 strings) and is refused with 400.
func TestIDs_NotUTF8Refused(t *testing.T) {
	h := newHarness(t)
	admin := h.clientToken("broker:admin")
	for _, path := range []string{"/v1/links/%FF", "/v1/links/a%C3:refresh", "/v1/profile-reports/%FE%FF", "/v1/links?page_token=%FF"} {
		method := "GET"
		if strings.HasSuffix(path, ":refresh") {
			method = "POST"
		}
		if status, body := h.call(method, path, admin, ""); status != http.StatusBadRequest || !strings.Contains(body, `"code":3`) {
			t.Errorf("%s %s = %d %s, want 400 INVALID_ARGUMENT", method, path, status, body)
		}
	}
}

// pathSegment is id as one path segment, as the README asks callers to send
// it: percent-encoded (url.PathEscape), with "." and ".." as %2E and %2E%2E.
func pathSegment(id string) string {
	if strings.Trim(id, ".") == "" {
		return strings.Repeat("%2E", len(id))
	}
	return url.PathEscape(id)
}

// reportBody is jenny's report with user and message id JSON-encoded.
func reportBody(user, messageID string) string {
	enc := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b[1 : len(b)-1])
	}
	return jenny(enc(user), enc(messageID))
}

// userIDOf returns the user_id of a link's JSON.
func userIDOf(tb testing.TB, body string) string {
	tb.Helper()
	var v struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		tb.Fatalf("link JSON %s: %v", body, err)
	}
	return v.UserID
}
