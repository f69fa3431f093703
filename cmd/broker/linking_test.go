package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// TestReciprocal_Authorize covers every row of the README's reciprocal error table for
// POST /api/reciprocal/authorize.
func TestReciprocal_Authorize(t *testing.T) {
	h := newHarness(t)
	other, err := sim.NewAuthServer(sim.AuthServerOptions{Issuer: h.sims.Auth.Issuer(), Audience: h.sims.Auth.Audience()})
	if err != nil {
		t.Fatal(err)
	}
	form := func(user string, kv ...string) url.Values {
		f := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor(user)}, "client_id": {alexaClient}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				f.Del(kv[i])
			} else {
				f.Set(kv[i], kv[i+1])
			}
		}
		return f
	}
	usedCode := h.sims.LWA.IssueCodeFor("used-code-owner")
	h.sims.LWA.FailNext(0, 0, 0)
	if status, body, _ := h.authorize(url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {usedCode}, "client_id": {alexaClient}},
		"Bearer "+h.userToken("used-code-owner")); status != 200 {
		t.Fatalf("first hand-over: %d %s", status, body)
	}

	tests := []struct {
		name      string
		form      url.Values
		header    string
		status    int
		errorCode string // RFC 6749 error, "" for success
		challenge string // WWW-Authenticate, when expected
	}{
		{"Amazon", form("u-amazon"), "Bearer " + h.userToken("u-amazon"), 200, "", ""},
		{"IETF", form("u-ietf", "grant_type", "urn:ietf:params:oauth:grant-type:reciprocal", "access_token", h.userToken("u-ietf")),
			"Basic YWxleGEtc2tpbGwtY2xpZW50OnNlY3JldA==", 200, "", ""},
		{"RetrySameUser", url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {usedCode}, "client_id": {alexaClient}},
			"Bearer " + h.userToken("used-code-owner"), 200, "", ""},
		{"UsedCodeOtherUser", url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {usedCode}, "client_id": {alexaClient}},
			"Bearer " + h.userToken("thief"), 400, "invalid_grant", ""},
		{"UnknownCode", form("u1", "code", "ANnot-a-real-code"), "Bearer " + h.userToken("u1"), 400, "invalid_grant", ""},
		{"MissingCode", form("u1", "code", ""), "Bearer " + h.userToken("u1"), 400, "invalid_request", ""},
		{"MissingClientID", form("u1", "client_id", ""), "Bearer " + h.userToken("u1"), 400, "invalid_request", ""},
		{"MissingGrantType", form("u1", "grant_type", ""), "Bearer " + h.userToken("u1"), 400, "invalid_request", ""},
		{"UnsupportedGrantType", form("u1", "grant_type", "authorization_code"), "Bearer " + h.userToken("u1"), 400, "unsupported_grant_type", ""},
		{"NoToken", form("u1"), "", 401, "invalid_token", "Bearer"},
		{"ExpiredToken", form("u1"), "Bearer " + h.sims.Auth.UserToken("u1", alexaClient, -2*time.Minute), 401, "invalid_token", `Bearer error="invalid_token"`},
		{"ForeignToken", form("u1"), "Bearer " + other.UserToken("u1", alexaClient, time.Hour), 401, "invalid_token", `Bearer error="invalid_token"`},
		{"ClientNotAllowed", form("u1", "client_id", "someone-else"), "Bearer " + h.sims.Auth.UserToken("u1", "someone-else", time.Hour), 400, "invalid_client", ""},
		{"ClientDiffersFromToken", form("u1"), "Bearer " + h.sims.Auth.UserToken("u1", "other-client", time.Hour), 400, "invalid_client", ""},
		{"TokenInHeaderAndForm", form("u1", "access_token", h.userToken("u1")), "Bearer " + h.userToken("u1"), 400, "invalid_request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, header := h.authorize(tt.form, tt.header)
			if status != tt.status {
				t.Fatalf("status = %d (%s), want %d", status, body, tt.status)
			}
			var got struct{ Error string }
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q is not JSON: %v", body, err)
			}
			if got.Error != tt.errorCode {
				t.Errorf("error = %q, want %q (body %s)", got.Error, tt.errorCode, body)
			}
			if tt.errorCode == "" && body != "{}" {
				t.Errorf("body = %s, want {}", body)
			}
			if got := header.Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if header.Get("Cache-Control") != "no-store" {
				t.Error("no Cache-Control: no-store")
			}
		})
	}

	t.Run("RetryMakesNoExchange", func(t *testing.T) {
		before := h.sims.LWA.Stats().Exchanges
		h.link("u-retry")
		f := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor("u-retry2")}, "client_id": {alexaClient}}
		for range 3 {
			if status, body, _ := h.authorize(f, "Bearer "+h.userToken("u-retry2")); status != 200 {
				t.Fatalf("retry: %d %s", status, body)
			}
		}
		if got, want := h.sims.LWA.Stats().Exchanges-before, 2; got != want {
			t.Errorf("LWA exchanges = %d, want %d (one per code)", got, want)
		}
	})
	t.Run("BadContentType", func(t *testing.T) {
		req, _ := http.NewRequest("POST", h.base+"/api/reciprocal/authorize", strings.NewReader(`{"code":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+h.userToken("u1"))
		if status, body, _ := h.do(req); status != 400 || !strings.Contains(body, "invalid_request") {
			t.Errorf("got %d %s, want 400 invalid_request", status, body)
		}
	})
	t.Run("RepeatedField", func(t *testing.T) {
		req, _ := http.NewRequest("POST", h.base+"/api/reciprocal/authorize",
			strings.NewReader("grant_type=reciprocal_authorization_code&code=a&code=b&client_id="+alexaClient))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+h.userToken("u1"))
		if status, body, _ := h.do(req); status != 400 || !strings.Contains(body, "invalid_request") {
			t.Errorf("got %d %s, want 400 invalid_request", status, body)
		}
	})
	t.Run("BodyOver64KiB", func(t *testing.T) {
		f := form("u1", "padding", strings.Repeat("x", 65<<10))
		if status, body, _ := h.authorize(f, "Bearer "+h.userToken("u1")); status != 400 || !strings.Contains(body, "invalid_request") {
			t.Errorf("got %d %s, want 400 invalid_request", status, body)
		}
	})
	t.Run("LWAUnavailable", func(t *testing.T) {
		h.sims.LWA.FailNext(1000, http.StatusServiceUnavailable, 0)
		defer h.sims.LWA.ClearFaults()
		start := time.Now()
		status, body, _ := h.authorize(form("u-503"), "Bearer "+h.userToken("u-503"))
		if status != 503 || !strings.Contains(body, "temporarily_unavailable") {
			t.Errorf("got %d %s, want 503 temporarily_unavailable", status, body)
		}
		if d := time.Since(start); d > 4*time.Second+500*time.Millisecond {
			t.Errorf("answered after %v, want within 4s", d)
		}
	})
	t.Run("LWASlow", func(t *testing.T) {
		h.sims.LWA.SetDelay(10 * time.Second)
		defer h.sims.LWA.ClearFaults()
		start := time.Now()
		status, body, _ := h.authorize(form("u-slow"), "Bearer "+h.userToken("u-slow"))
		if status != 503 {
			t.Errorf("got %d %s, want 503", status, body)
		}
		if d := time.Since(start); d > 4*time.Second+500*time.Millisecond {
			t.Errorf("answered after %v, want within 4s", d)
		}
	})
}

// partnerToken asks for userID's token over gRPC or HTTP and returns the
// access token, the HTTP status (gRPC codes mapped through the same table) and
// the raw error.
type partnerTokenCall func(t *testing.T, h *harness, token, userID string) (accessToken string, httpStatus int)

var transports = map[string]partnerTokenCall{
	"gRPC": func(t *testing.T, h *harness, token, userID string) (string, int) {
		resp, err := brokerv1.NewPartnerTokenServiceClient(h.conn).GetPartnerToken(withBearer(t.Context(), token),
			&brokerv1.GetPartnerTokenRequest{UserId: userID})
		return resp.GetAccessToken(), grpcHTTP[status.Code(err)]
	},
	"HTTP": func(t *testing.T, h *harness, token, userID string) (string, int) {
		status, body := h.call("POST", "/v1/partner-token", token, `{"user_id":"`+userID+`"}`)
		var got struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresAt   string `json:"expires_at"`
			ExpiresIn   int    `json:"expires_in"`
		}
		_ = json.Unmarshal([]byte(body), &got)
		if status == 200 {
			if got.TokenType != "bearer" || got.ExpiresIn < 300 || got.ExpiresAt == "" || strings.Contains(body, "refresh") {
				t.Errorf("partner token body %s lacks the API's fields", body)
			}
			if _, err := time.Parse(time.RFC3339, got.ExpiresAt); err != nil {
				t.Errorf("expires_at %q is not RFC 3339", got.ExpiresAt)
			}
		}
		return got.AccessToken, status
	},
}

var grpcHTTP = map[codes.Code]int{
	codes.OK: 200, codes.NotFound: 404, codes.FailedPrecondition: 412, codes.PermissionDenied: 403,
	codes.Unauthenticated: 401, codes.Unavailable: 503, codes.InvalidArgument: 400,
}

// TestPartnerToken runs the partner-token cases over gRPC and over HTTP.
func TestPartnerToken(t *testing.T) {
	for name, get := range transports {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			tokensScope := h.clientToken("broker:tokens")
			h.link("parent")

			t.Run("Fresh", func(t *testing.T) {
				before := h.sims.LWA.Stats().Refreshes
				tok, status := get(t, h, tokensScope, "parent")
				if status != 200 || !h.sims.LWA.ValidAccessToken(tok) {
					t.Fatalf("status %d, valid %v", status, h.sims.LWA.ValidAccessToken(tok))
				}
				if h.sims.LWA.Stats().Refreshes != before {
					t.Error("a fresh token was refreshed")
				}
			})
			t.Run("NotLinked", func(t *testing.T) {
				if _, status := get(t, h, tokensScope, "stranger"); status != 404 {
					t.Errorf("status %d, want 404", status)
				}
			})
			t.Run("MissingScope", func(t *testing.T) {
				if _, status := get(t, h, h.clientToken("broker:profiles"), "parent"); status != 403 {
					t.Errorf("status %d, want 403", status)
				}
			})
			t.Run("NoToken", func(t *testing.T) {
				if _, status := get(t, h, "", "parent"); status != 401 {
					t.Errorf("status %d, want 401", status)
				}
			})
			t.Run("RotationOverSeveralExpiries", func(t *testing.T) {
				before := h.sims.LWA.Stats().RefreshesOK
				seen := map[string]bool{}
				for i := range 5 {
					h.clock.Advance(56 * time.Minute) // within 5 min of expiry
					tok, status := get(t, h, tokensScope, "parent")
					if status != 200 || !h.sims.LWA.ValidAccessToken(tok) || seen[tok] {
						t.Fatalf("expiry %d: status %d, valid %v, repeated %v", i, status, h.sims.LWA.ValidAccessToken(tok), seen[tok])
					}
					seen[tok] = true
				}
				if got := h.sims.LWA.Stats().RefreshesOK - before; got != 5 {
					t.Errorf("LWA refreshes = %d, want 5", got)
				}
			})
			t.Run("Transient", func(t *testing.T) {
				h.clock.Advance(56 * time.Minute)
				h.sims.LWA.FailNext(1000, http.StatusInternalServerError, 0)
				_, status := get(t, h, tokensScope, "parent")
				h.sims.LWA.ClearFaults()
				if status != 503 {
					t.Errorf("status %d, want 503", status)
				}
				if _, status := get(t, h, tokensScope, "parent"); status != 200 {
					t.Errorf("after LWA recovered: status %d, want 200 (link must stay LINKED)", status)
				}
			})
			t.Run("RelinkRequired", func(t *testing.T) {
				h.link("revoked")
				h.sims.LWA.RevokeUser("revoked")
				h.clock.Advance(56 * time.Minute)
				if _, status := get(t, h, tokensScope, "revoked"); status != 412 {
					t.Fatalf("status %d, want 412", status)
				}
				before := h.sims.LWA.Stats().Requests
				if _, status := get(t, h, tokensScope, "revoked"); status != 412 {
					t.Errorf("again: status %d, want 412", status)
				}
				if h.sims.LWA.Stats().Requests != before {
					t.Error("LWA was called again for a link that needs re-linking")
				}
				status, body := h.call("GET", "/v1/links/revoked", tokensScope, "")
				if status != 200 || !strings.Contains(body, `"state":"RELINK_REQUIRED"`) {
					t.Errorf("link: %d %s, want RELINK_REQUIRED", status, body)
				}
				h.link("revoked") // a new code from Alexa links again
				if _, status := get(t, h, tokensScope, "revoked"); status != 200 {
					t.Errorf("after re-linking: status %d, want 200", status)
				}
			})
		})
	}
}

// TestPartnerToken_Concurrent: 500 callers on an expired token cause exactly
// one LWA refresh, and all get the new token.
func TestPartnerToken_Concurrent(t *testing.T) {
	h := newHarness(t)
	h.link("busy")
	h.clock.Advance(2 * time.Hour) // expired
	h.sims.LWA.SetDelay(200 * time.Millisecond)
	before := h.sims.LWA.Stats().Refreshes
	client := brokerv1.NewPartnerTokenServiceClient(h.conn)
	ctx := withBearer(context.Background(), h.clientToken("broker:tokens"))

	const callers = 500
	var wg sync.WaitGroup
	got := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.GetPartnerToken(ctx, &brokerv1.GetPartnerTokenRequest{UserId: "busy"})
			got[i], errs[i] = resp.GetAccessToken(), err
		}()
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("caller %d got another token than caller 0", i)
		}
	}
	if !h.sims.LWA.ValidAccessToken(got[0]) {
		t.Error("the shared token is not valid at LWA")
	}
	if n := h.sims.LWA.Stats().Refreshes - before; n != 1 {
		t.Errorf("LWA refreshes = %d, want exactly 1", n)
	}
}

// TestLinks runs the link service over HTTP and gRPC.
func TestLinks(t *testing.T) {
	h := newHarness(t)
	admin, reader := h.clientToken("broker:admin"), h.clientToken("broker:tokens")
	for _, u := range []string{"a", "b", "c"} {
		h.link(u)
	}
	t.Run("Get", func(t *testing.T) {
		status, body := h.call("GET", "/v1/links/a", reader, "")
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		var l map[string]any
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"user_id", "state", "region", "linked_at", "access_token_expires_at", "last_refreshed_at"} {
			if _, ok := l[f]; !ok {
				t.Errorf("link lacks %s: %s", f, body)
			}
		}
		if l["state"] != "LINKED" || strings.Contains(body, "Atz") {
			t.Errorf("link body %s: want LINKED and no token", body)
		}
	})
	t.Run("GetMissing", func(t *testing.T) {
		if status, _ := h.call("GET", "/v1/links/zz", reader, ""); status != 404 {
			t.Errorf("status %d, want 404", status)
		}
	})
	t.Run("ListPaged", func(t *testing.T) {
		links := brokerv1.NewLinkServiceClient(h.conn)
		ctx := withBearer(t.Context(), admin)
		var users []string
		token := ""
		for {
			resp, err := links.ListLinks(ctx, &brokerv1.ListLinksRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range resp.GetLinks() {
				users = append(users, l.GetUserId())
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		if got := strings.Join(users, ","); got != "a,b,c" {
			t.Errorf("listed %s, want a,b,c", got)
		}
	})
	t.Run("Refresh", func(t *testing.T) {
		before := h.sims.LWA.Stats().RefreshesOK
		status, body := h.call("POST", "/v1/links/b:refresh", admin, "")
		if status != 200 || h.sims.LWA.Stats().RefreshesOK != before+1 {
			t.Errorf("refresh: %d %s, LWA refreshes %d", status, body, h.sims.LWA.Stats().RefreshesOK-before)
		}
	})
	t.Run("DeleteNeedsAdmin", func(t *testing.T) {
		if status, _ := h.call("DELETE", "/v1/links/c", reader, ""); status != 403 {
			t.Errorf("status %d, want 403", status)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		if status, body := h.call("DELETE", "/v1/links/c", admin, ""); status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		if status, _ := h.call("DELETE", "/v1/links/c", admin, ""); status != 404 {
			t.Errorf("second delete: status %d, want 404", status)
		}
		if status, _ := h.call("POST", "/v1/partner-token", reader, `{"user_id":"c"}`); status != 404 {
			t.Errorf("token after delete: status %d, want 404", status)
		}
	})
}

// TestSecrets: neither the database file nor the log holds a token, a code or
// a secret in clear.
func TestSecrets(t *testing.T) {
	h := newHarness(t)
	code := h.sims.LWA.IssueCodeFor("secretive")
	userJWT := h.userToken("secretive")
	f := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {code}, "client_id": {alexaClient}}
	if status, body, _ := h.authorize(f, "Bearer "+userJWT); status != 200 {
		t.Fatalf("hand-over: %d %s", status, body)
	}
	h.authorize(f, "Bearer "+h.userToken("thief")) // a refused use of the code, logged
	scope := h.clientToken("broker:tokens")
	var access []string
	for range 3 {
		h.clock.Advance(56 * time.Minute)
		tok, status := transports["HTTP"](t, h, scope, "secretive")
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		access = append(access, tok)
	}
	h.call("POST", "/v1/partner-token", "not-a-jwt", `{"user_id":"secretive"}`)

	db, err := os.ReadFile(h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := []byte(h.logs.String())
	if !bytes.Contains(logs, []byte("http request")) {
		t.Fatal("the log is empty; the test would prove nothing")
	}
	secrets := append([]string{code, userJWT, scope, h.sims.LWA.ClientSecret(), testKey, "Atza|", "Atzr|"}, access...)
	for _, s := range secrets {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("the database file holds a secret in clear (%.8s…)", s)
		}
		if bytes.Contains(logs, []byte(s)) {
			t.Errorf("the log holds a secret (%.8s…)", s)
		}
	}
}
