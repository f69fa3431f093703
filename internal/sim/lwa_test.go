package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// startLWA starts an LWA simulator on a loopback port with a settable clock;
// it is closed when the test ends.
func startLWA(tb testing.TB, opts sim.LWAOptions) (*sim.LWA, *sim.Clock) {
	tb.Helper()
	clk := sim.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	l := sim.NewLWA(opts)
	if err := l.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return l, clk
}

// lwaAnswer is a decoded answer of the token endpoint.
type lwaAnswer struct {
	Status int
	Header http.Header
	Body   map[string]any
}

// lwaPost posts form to l's token endpoint with HTTP Basic credentials when
// basic is true, else with the form as it is.
func lwaPost(tb testing.TB, l *sim.LWA, form url.Values, basic bool) lwaAnswer {
	tb.Helper()
	return lwaPostRaw(tb, l, "application/x-www-form-urlencoded;charset=UTF-8", form.Encode(), func(r *http.Request) {
		if basic {
			r.SetBasicAuth(url.QueryEscape(l.ClientID()), url.QueryEscape(l.ClientSecret()))
		}
	})
}

// lwaPostRaw posts body with contentType to l's token endpoint; prepare, when
// not nil, may adjust the request.
func lwaPostRaw(tb testing.TB, l *sim.LWA, contentType, body string, prepare func(*http.Request)) lwaAnswer {
	tb.Helper()
	a, err := lwaDo(tb.Context(), l, contentType, body, prepare)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// lwaDo posts body to l's token endpoint and decodes the answer. Unlike the
// helpers above it does not stop the test, so goroutines may call it.
func lwaDo(ctx context.Context, l *sim.LWA, contentType, body string, prepare func(*http.Request)) (lwaAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.TokenURL(), strings.NewReader(body))
	if err != nil {
		return lwaAnswer{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if prepare != nil {
		prepare(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return lwaAnswer{}, fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return lwaAnswer{}, fmt.Errorf("read answer: %w", err)
	}
	a := lwaAnswer{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, &a.Body); err != nil {
		return a, fmt.Errorf("answer %d is not JSON: %w: %s", resp.StatusCode, err, raw)
	}
	return a, nil
}

// lwaForm returns the form of a grant with client credentials in the form.
func lwaForm(l *sim.LWA, kv ...string) url.Values {
	v := url.Values{"client_id": {l.ClientID()}, "client_secret": {l.ClientSecret()}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// lwaExchange exchanges a fresh code and returns the answer's tokens.
func lwaExchange(tb testing.TB, l *sim.LWA) (access, refresh string) {
	tb.Helper()
	a := lwaPost(tb, l, lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode()), false)
	if a.Status != http.StatusOK {
		tb.Fatalf("exchange: status %d: %v", a.Status, a.Body)
	}
	return a.Body["access_token"].(string), a.Body["refresh_token"].(string)
}

// assertOAuthError fails unless a is an error answer with status and code.
func assertOAuthError(tb testing.TB, a lwaAnswer, status int, code string) {
	tb.Helper()
	if a.Status != status || a.Body["error"] != code {
		tb.Fatalf("answer = %d %v, want %d with error %q", a.Status, a.Body, status, code)
	}
	if _, ok := a.Body["error_description"].(string); !ok {
		tb.Errorf("answer has no error_description: %v", a.Body)
	}
}

func TestLWA_Exchange(t *testing.T) {
	t.Run("Success", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		a := lwaPost(t, l, url.Values{"grant_type": {"authorization_code"}, "code": {l.IssueCode()}}, true)
		if a.Status != http.StatusOK {
			t.Fatalf("status = %d, want 200: %v", a.Status, a.Body)
		}
		access, _ := a.Body["access_token"].(string)
		refresh, _ := a.Body["refresh_token"].(string)
		if !strings.HasPrefix(access, "Atza|") || !strings.HasPrefix(refresh, "Atzr|") {
			t.Errorf("tokens = %q, %q; want Atza|… and Atzr|…", access, refresh)
		}
		if got, want := a.Body["token_type"], "bearer"; got != want {
			t.Errorf("token_type = %v, want %v", got, want)
		}
		if got, want := a.Body["expires_in"], float64(3600); got != want {
			t.Errorf("expires_in = %#v, want %v", got, want)
		}
		if got, want := a.Header.Get("Cache-Control"), "no-store"; got != want {
			t.Errorf("Cache-Control = %q, want %q", got, want)
		}
		if !strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
			t.Errorf("Content-Type = %q, want JSON", a.Header.Get("Content-Type"))
		}
		if !l.ValidAccessToken(access) {
			t.Error("ValidAccessToken = false for a fresh token")
		}
		if got, want := l.Stats(), (sim.LWAStats{Requests: 1, Exchanges: 1, ExchangesOK: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("ExpiresInAsString", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{ExpiresInAsString: true, AccessTokenLifetime: 20 * time.Minute})
		a := lwaPost(t, l, lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode()), false)
		if got, want := a.Body["expires_in"], "1200"; got != want {
			t.Errorf("expires_in = %#v, want %q", got, want)
		}
	})
	t.Run("CodeIsSingleUse", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		form := lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode())
		if a := lwaPost(t, l, form, false); a.Status != http.StatusOK {
			t.Fatalf("first exchange: %d %v", a.Status, a.Body)
		}
		a := lwaPost(t, l, form, false)
		assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
		if got, want := a.Body["error_description"], "The request has an invalid grant parameter : code"; got != want {
			t.Errorf("error_description = %q, want %q", got, want)
		}
		if got, want := l.Stats(), (sim.LWAStats{Requests: 2, Exchanges: 2, ExchangesOK: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("CodeExpires", func(t *testing.T) {
		l, clk := startLWA(t, sim.LWAOptions{})
		code := l.IssueCode()
		clk.Advance(sim.DefaultLWACodeLifetime)
		a := lwaPost(t, l, lwaForm(l, "grant_type", "authorization_code", "code", code), false)
		assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("CodeJustBeforeExpiry", func(t *testing.T) {
		l, clk := startLWA(t, sim.LWAOptions{})
		code := l.IssueCode()
		clk.Advance(sim.DefaultLWACodeLifetime - time.Second)
		if a := lwaPost(t, l, lwaForm(l, "grant_type", "authorization_code", "code", code), false); a.Status != http.StatusOK {
			t.Fatalf("status = %d, want 200: %v", a.Status, a.Body)
		}
	})
	t.Run("UnknownCode", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		a := lwaPost(t, l, lwaForm(l, "grant_type", "authorization_code", "code", "ANnosuchcode"), false)
		assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("RevokeOnCodeReuse", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{RevokeOnCodeReuse: true})
		form := lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode())
		first := lwaPost(t, l, form, false)
		access := first.Body["access_token"].(string)
		assertOAuthError(t, lwaPost(t, l, form, false), http.StatusBadRequest, "invalid_grant")
		if l.ValidAccessToken(access) {
			t.Error("access token still valid after the code was reused")
		}
		a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", first.Body["refresh_token"].(string)), false)
		assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
	})
}

func TestLWA_ClientAuthentication(t *testing.T) {
	const secret = "s3cr+t/with=odd&chars"
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	inForm := func(id, secret string) func(url.Values) {
		return func(f url.Values) {
			f.Set("client_id", id)
			if secret != "" {
				f.Set("client_secret", secret)
			}
		}
	}
	tests := []struct {
		name       string
		header     func(*http.Request)
		form       func(url.Values)
		wantStatus int
		wantError  string
	}{
		{name: "Basic", header: basic("cid", url.QueryEscape(secret)), wantStatus: http.StatusOK},
		{name: "BasicNotFormEncoded", header: basic("cid", secret), wantStatus: http.StatusOK},
		{name: "Form", form: inForm("cid", secret), wantStatus: http.StatusOK},
		{name: "BasicWithSameFormClientID", header: basic("cid", url.QueryEscape(secret)), form: inForm("cid", ""), wantStatus: http.StatusOK},
		{name: "BasicWithOtherFormClientID", header: basic("cid", url.QueryEscape(secret)), form: inForm("other", ""), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "WrongBasicSecret", header: basic("cid", "wrong"), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "WrongFormSecret", form: inForm("cid", "wrong"), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "WrongClientID", header: basic("other", url.QueryEscape(secret)), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "FormClientIDOnly", form: inForm("cid", ""), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "Missing", wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "BothMethods", header: basic("cid", url.QueryEscape(secret)), form: inForm("cid", secret), wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := startLWA(t, sim.LWAOptions{ClientID: "cid", ClientSecret: secret})
			form := url.Values{"grant_type": {"authorization_code"}, "code": {l.IssueCode()}}
			if tt.form != nil {
				tt.form(form)
			}
			a := lwaPostRaw(t, l, "application/x-www-form-urlencoded", form.Encode(), tt.header)
			if tt.wantError == "" {
				if a.Status != tt.wantStatus {
					t.Fatalf("status = %d, want %d: %v", a.Status, tt.wantStatus, a.Body)
				}
				return
			}
			assertOAuthError(t, a, tt.wantStatus, tt.wantError)
			if got := l.Stats().ExchangesOK; got != 0 {
				t.Errorf("ExchangesOK = %d, want 0", got)
			}
		})
	}
}

func TestLWA_Refresh(t *testing.T) {
	t.Run("Rotates", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		_, rt := lwaExchange(t, l)
		old := rt
		for i := range 3 {
			a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", rt), false)
			if a.Status != http.StatusOK {
				t.Fatalf("refresh %d: %d %v", i, a.Status, a.Body)
			}
			next, _ := a.Body["refresh_token"].(string)
			if next == "" || next == rt {
				t.Fatalf("refresh %d: refresh token not rotated", i)
			}
			if !l.ValidAccessToken(a.Body["access_token"].(string)) {
				t.Errorf("refresh %d: new access token not valid", i)
			}
			rt = next
		}
		a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", old), false)
		assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
		if got, want := a.Body["error_description"], "The request has an invalid grant parameter : refresh_token"; got != want {
			t.Errorf("error_description = %q, want %q", got, want)
		}
		if got, want := l.Stats(), (sim.LWAStats{Requests: 5, Exchanges: 1, ExchangesOK: 1, Refreshes: 4, RefreshesOK: 3}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("NoRotation", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{NoRotation: true})
		_, rt := lwaExchange(t, l)
		for i := range 2 {
			a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", rt), false)
			if a.Status != http.StatusOK {
				t.Fatalf("refresh %d: %d %v", i, a.Status, a.Body)
			}
			if _, ok := a.Body["refresh_token"]; ok {
				t.Errorf("refresh %d: answer has a refresh_token, want none", i)
			}
		}
	})
	t.Run("RevokeRefreshToken", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		access, rt := lwaExchange(t, l)
		if !l.RevokeRefreshToken(rt) {
			t.Fatal("RevokeRefreshToken = false")
		}
		if l.RevokeRefreshToken(rt) {
			t.Error("second RevokeRefreshToken = true")
		}
		if l.ValidAccessToken(access) {
			t.Error("access token valid after revocation")
		}
		a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", rt), false)
		assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("RevokeUser", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		code := l.IssueCodeFor("amzn1.account.ALICE")
		a := lwaPost(t, l, lwaForm(l, "grant_type", "authorization_code", "code", code), false)
		access, rt := a.Body["access_token"].(string), a.Body["refresh_token"].(string)
		pending := l.IssueCodeFor("amzn1.account.ALICE")
		otherAccess, otherRT := lwaExchange(t, l)

		if user, ok := l.AccessTokenUser(access); !ok || user != "amzn1.account.ALICE" {
			t.Errorf("AccessTokenUser = %q, %v; want amzn1.account.ALICE, true", user, ok)
		}
		if got, want := l.RevokeUser("amzn1.account.ALICE"), 2; got != want {
			t.Errorf("RevokeUser = %d, want %d", got, want)
		}
		if l.ValidAccessToken(access) {
			t.Error("revoked user's access token still valid")
		}
		assertOAuthError(t, lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", rt), false), http.StatusBadRequest, "invalid_grant")
		assertOAuthError(t, lwaPost(t, l, lwaForm(l, "grant_type", "authorization_code", "code", pending), false), http.StatusBadRequest, "invalid_grant")
		if !l.ValidAccessToken(otherAccess) {
			t.Error("another user's access token was revoked")
		}
		if a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", otherRT), false); a.Status != http.StatusOK {
			t.Errorf("another user's refresh: %d %v", a.Status, a.Body)
		}
	})
	t.Run("AccessTokenExpires", func(t *testing.T) {
		l, clk := startLWA(t, sim.LWAOptions{AccessTokenLifetime: time.Minute})
		access, rt := lwaExchange(t, l)
		clk.Advance(time.Minute - time.Second)
		if !l.ValidAccessToken(access) {
			t.Error("access token invalid before its expiry")
		}
		clk.Advance(time.Second)
		if l.ValidAccessToken(access) {
			t.Error("access token valid at its expiry")
		}
		// Refresh tokens do not expire with time.
		clk.Advance(365 * 24 * time.Hour)
		if a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", rt), false); a.Status != http.StatusOK {
			t.Errorf("refresh after a year: %d %v", a.Status, a.Body)
		}
	})
	t.Run("UnknownAccessToken", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		if l.ValidAccessToken("Atza|nosuchtoken") || l.ValidAccessToken("") {
			t.Error("ValidAccessToken = true for a token never issued")
		}
	})
}

func TestLWA_InvalidRequest(t *testing.T) {
	errorIndex := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	tests := []struct {
		name        string
		contentType string
		body        func(l *sim.LWA) string
		wantStatus  int
		wantError   string
	}{
		{
			name:        "JSONContentType",
			contentType: "application/json",
			body: func(l *sim.LWA) string {
				return lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode()).Encode()
			},
			wantStatus: http.StatusBadRequest,
			wantError:  "invalid_request",
		},
		{
			name:        "NoContentType",
			contentType: "",
			body: func(l *sim.LWA) string {
				return lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode()).Encode()
			},
			wantStatus: http.StatusBadRequest,
			wantError:  "invalid_request",
		},
		{
			name:        "MissingGrantType",
			contentType: "application/x-www-form-urlencoded",
			body:        func(l *sim.LWA) string { return lwaForm(l, "code", l.IssueCode()).Encode() },
			wantStatus:  http.StatusBadRequest,
			wantError:   "invalid_request",
		},
		{
			name:        "MissingCode",
			contentType: "application/x-www-form-urlencoded",
			body:        func(l *sim.LWA) string { return lwaForm(l, "grant_type", "authorization_code").Encode() },
			wantStatus:  http.StatusBadRequest,
			wantError:   "invalid_request",
		},
		{
			name:        "MissingRefreshToken",
			contentType: "application/x-www-form-urlencoded",
			body:        func(l *sim.LWA) string { return lwaForm(l, "grant_type", "refresh_token").Encode() },
			wantStatus:  http.StatusBadRequest,
			wantError:   "invalid_request",
		},
		{
			name:        "RepeatedParameter",
			contentType: "application/x-www-form-urlencoded",
			body: func(l *sim.LWA) string {
				return lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode()).Encode() + "&code=ANother"
			},
			wantStatus: http.StatusBadRequest,
			wantError:  "invalid_request",
		},
		{
			name:        "MalformedForm",
			contentType: "application/x-www-form-urlencoded",
			body:        func(*sim.LWA) string { return "grant_type=%zz" },
			wantStatus:  http.StatusBadRequest,
			wantError:   "invalid_request",
		},
		{
			name:        "TooLarge",
			contentType: "application/x-www-form-urlencoded",
			body: func(l *sim.LWA) string {
				return lwaForm(l, "grant_type", "authorization_code", "code", strings.Repeat("A", 70<<10)).Encode()
			},
			wantStatus: http.StatusBadRequest,
			wantError:  "invalid_request",
		},
		{
			name:        "UnsupportedGrantType",
			contentType: "application/x-www-form-urlencoded",
			body:        func(l *sim.LWA) string { return lwaForm(l, "grant_type", "password").Encode() },
			wantStatus:  http.StatusBadRequest,
			wantError:   "unsupported_grant_type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := startLWA(t, sim.LWAOptions{})
			a := lwaPostRaw(t, l, tt.contentType, tt.body(l), nil)
			assertOAuthError(t, a, tt.wantStatus, tt.wantError)
			if tt.wantError == "invalid_request" {
				if idx, _ := a.Body["error_index"].(string); !errorIndex.MatchString(idx) {
					t.Errorf("error_index = %q, want a UUID", idx)
				}
			}
			if got := l.Stats().ExchangesOK; got != 0 {
				t.Errorf("ExchangesOK = %d, want 0", got)
			}
		})
	}
	t.Run("WrongMethod", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		resp, err := http.Get(l.TokenURL())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got, want := resp.StatusCode, http.StatusMethodNotAllowed; got != want {
			t.Errorf("status = %d, want %d", got, want)
		}
	})
	t.Run("OtherPath", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		resp, err := http.Post(l.URL()+"/auth/o2/other", "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got, want := resp.StatusCode, http.StatusNotFound; got != want {
			t.Errorf("status = %d, want %d", got, want)
		}
	})
}

func TestLWA_Faults(t *testing.T) {
	t.Run("FailNext", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		l.FailNext(2, http.StatusServiceUnavailable, 1500*time.Millisecond)
		form := lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode())
		for i := range 2 {
			a := lwaPost(t, l, form, false)
			assertOAuthError(t, a, http.StatusServiceUnavailable, "temporarily_unavailable")
			if got, want := a.Header.Get("Retry-After"), "2"; got != want {
				t.Errorf("answer %d: Retry-After = %q, want %q", i, got, want)
			}
		}
		if a := lwaPost(t, l, form, false); a.Status != http.StatusOK {
			t.Fatalf("after the faults: %d %v", a.Status, a.Body)
		}
		if got, want := l.Stats(), (sim.LWAStats{Requests: 3, Exchanges: 3, ExchangesOK: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("ServerError", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		l.FailNext(1, http.StatusInternalServerError, 0)
		a := lwaPost(t, l, lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode()), false)
		assertOAuthError(t, a, http.StatusInternalServerError, "server_error")
		if got := a.Header.Get("Retry-After"); got != "" {
			t.Errorf("Retry-After = %q, want none", got)
		}
	})
	t.Run("ThrottleNext", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		l.ThrottleNext(1, time.Second)
		a := lwaPost(t, l, lwaForm(l, "grant_type", "refresh_token", "refresh_token", "Atzr|x"), false)
		if got, want := a.Status, http.StatusTooManyRequests; got != want {
			t.Fatalf("status = %d, want %d", got, want)
		}
		if got, want := a.Header.Get("Retry-After"), "1"; got != want {
			t.Errorf("Retry-After = %q, want %q", got, want)
		}
		if got, want := l.Stats(), (sim.LWAStats{Requests: 1, Refreshes: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("ClearFaults", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		l.FailNext(3, http.StatusInternalServerError, 0)
		l.SetDelay(time.Hour)
		l.ClearFaults()
		lwaExchange(t, l)
	})
	t.Run("DelayEndsWithClient", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		l.SetDelay(time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.TokenURL(),
			strings.NewReader(lwaForm(l, "grant_type", "authorization_code", "code", l.IssueCode()).Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("answer %d came despite the delay", resp.StatusCode)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline error", err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("request took %v", elapsed)
		}
		// Close (in cleanup) returns promptly only if the waiting handler ended;
		// the delay must also not leak into later answers once cleared.
		l.SetDelay(0)
		lwaExchange(t, l)
	})
	t.Run("DelayedAnswer", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		l.SetDelay(50 * time.Millisecond)
		start := time.Now()
		lwaExchange(t, l)
		if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
			t.Errorf("answer came after %v, want at least 50ms", elapsed)
		}
	})
}

func TestLWA_Lifecycle(t *testing.T) {
	t.Run("RejectsNonLoopbackAddress", func(t *testing.T) {
		for _, addr := range []string{":0", "0.0.0.0:0", "example.com:80", "nonsense"} {
			l := sim.NewLWA(sim.LWAOptions{Addr: addr})
			if err := l.Start(t.Context()); err == nil {
				_ = l.Close()
				t.Errorf("Start(%q) = nil, want an error", addr)
			}
		}
	})
	t.Run("StartTwice", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{})
		if err := l.Start(t.Context()); err == nil {
			t.Error("second Start = nil, want an error")
		}
	})
	t.Run("CloseIsIdempotent", func(t *testing.T) {
		l := sim.NewLWA(sim.LWAOptions{})
		if err := l.Close(); err != nil {
			t.Errorf("Close before Start: %v", err)
		}
		if err := l.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(l.URL(), "http://127.0.0.1:") {
			t.Errorf("URL = %q, want http://127.0.0.1:…", l.URL())
		}
		for range 2 {
			if err := l.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if _, err := http.Post(l.TokenURL(), "application/x-www-form-urlencoded", nil); err == nil {
			t.Error("server still answers after Close")
		}
	})
	t.Run("ContextEndsServer", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		l := sim.NewLWA(sim.LWAOptions{})
		if err := l.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		cancel()
		deadline := time.Now().Add(5 * time.Second)
		for {
			resp, err := http.Post(l.TokenURL(), "application/x-www-form-urlencoded", nil)
			if err != nil {
				break
			}
			resp.Body.Close()
			if time.Now().After(deadline) {
				t.Fatal("server still answers 5s after its context ended")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestLWA_Concurrent(t *testing.T) {
	l, _ := startLWA(t, sim.LWAOptions{})
	const workers = 12
	post := func(kv ...string) (lwaAnswer, error) {
		a, err := lwaDo(t.Context(), l, "application/x-www-form-urlencoded", lwaForm(l, kv...).Encode(), nil)
		if err == nil && a.Status != http.StatusOK {
			err = fmt.Errorf("status %d: %v", a.Status, a.Body)
		}
		return a, err
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			a, err := post("grant_type", "authorization_code", "code", l.IssueCode())
			if err != nil {
				t.Errorf("exchange: %v", err)
				return
			}
			for range 3 {
				if a, err = post("grant_type", "refresh_token", "refresh_token", a.Body["refresh_token"].(string)); err != nil {
					t.Errorf("refresh: %v", err)
					return
				}
			}
			if !l.ValidAccessToken(a.Body["access_token"].(string)) {
				t.Error("last access token not valid")
			}
		})
	}
	// Fault settings and stats reads race with the requests on purpose.
	wg.Go(func() {
		for range 20 {
			l.SetDelay(time.Millisecond)
			_ = l.Stats()
			l.SetDelay(0)
		}
	})
	wg.Wait()
	want := sim.LWAStats{Requests: workers * 4, Exchanges: workers, ExchangesOK: workers, Refreshes: workers * 3, RefreshesOK: workers * 3}
	if got := l.Stats(); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}
