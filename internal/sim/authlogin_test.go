package sim_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// The login flow's public client in these tests.
const (
	consoleClient   = "broker-console"
	consoleRedirect = "http://127.0.0.1:8080/console/"
	consoleOrigin   = "http://127.0.0.1:8080"
)

// pkce is a PKCE verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE(seed string) pkce {
	verifier := strings.Repeat(seed, 43/len(seed)+1)[:43]
	sum := sha256.Sum256([]byte(verifier))
	return pkce{verifier, base64.RawURLEncoding.EncodeToString(sum[:])}
}

// authorizeQuery is a valid authorization request of consoleClient.
func authorizeQuery(p pkce) url.Values {
	return url.Values{
		"response_type": {"code"}, "client_id": {consoleClient}, "redirect_uri": {consoleRedirect},
		"scope": {"openid broker:admin"}, "state": {"st-1"},
		"code_challenge": {p.challenge}, "code_challenge_method": {"S256"},
	}
}

// noRedirects is a client that returns redirects rather than following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// signIn posts the login page's form for q as user, granting grants, and
// returns the query of the redirect back to the client.
func signIn(tb testing.TB, s *sim.AuthServer, q url.Values, user string, grants ...string) url.Values {
	tb.Helper()
	form := url.Values{}
	for k, v := range q {
		form[k] = v
	}
	form.Set("user", user)
	form.Set("decision", "allow")
	form["grant"] = grants
	resp, err := noRedirects.PostForm(s.URL()+sim.AuthorizePath, form)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return redirectQuery(tb, resp, q.Get("redirect_uri"))
}

// redirectQuery returns the query of resp's redirect, which must go to
// redirectURI.
func redirectQuery(tb testing.TB, resp *http.Response, redirectURI string) url.Values {
	tb.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		tb.Fatalf("status %d, want 303", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		tb.Fatalf("redirected to %s, want %s", got, redirectURI)
	}
	return loc.Query()
}

// exchange posts form to the token endpoint and returns the status and the
// decoded JSON answer.
func exchange(tb testing.TB, s *sim.AuthServer, form url.Values) (int, map[string]any, http.Header) {
	tb.Helper()
	req, err := http.NewRequest("POST", s.URL()+sim.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", consoleOrigin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

// tokenForm is the token request that exchanges code with p's verifier.
func tokenForm(code string, p pkce) url.Values {
	return url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "client_id": {consoleClient},
		"redirect_uri": {consoleRedirect}, "code_verifier": {p.verifier},
	}
}

func TestAuthServer_AddPublicClient(t *testing.T) {
	s := startAuthServer(t, sim.AuthServerOptions{})
	for _, c := range []struct {
		id       string
		redirect []string
	}{
		{"", []string{consoleRedirect}},
		{consoleClient, nil},
		{consoleClient, []string{"/console/"}},
		{consoleClient, []string{"ftp://host/console/"}},
		{consoleClient, []string{consoleRedirect + "#frag"}},
	} {
		if err := s.AddPublicClient(c.id, c.redirect...); err == nil {
			t.Errorf("AddPublicClient(%q, %q): got nil error, want one", c.id, c.redirect)
		}
	}
}

func TestAuthServer_Login(t *testing.T) {
	s := startAuthServer(t, sim.AuthServerOptions{})
	if err := s.AddPublicClient(consoleClient, consoleRedirect); err != nil {
		t.Fatal(err)
	}

	t.Run("Discovery", func(t *testing.T) {
		_, body := get(t, s.URL()+"/.well-known/openid-configuration")
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{
			"authorization_endpoint": s.URL() + sim.AuthorizePath,
			"token_endpoint":         s.URL() + sim.TokenPath,
		} {
			if doc[k] != want {
				t.Errorf("%s = %v, want %s", k, doc[k], want)
			}
		}
		if methods, _ := doc["code_challenge_methods_supported"].([]any); len(methods) != 1 || methods[0] != "S256" {
			t.Errorf("code_challenge_methods_supported = %v, want [S256]", doc["code_challenge_methods_supported"])
		}
	})

	t.Run("Page", func(t *testing.T) {
		q := authorizeQuery(newPKCE("page"))
		q.Set("state", `"><script>alert(1)</script>`)
		status, body := get(t, s.URL()+sim.AuthorizePath+"?"+q.Encode())
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		page := string(body)
		for _, want := range []string{`value="broker:admin"`, `value="openid"`, `name="user" value="operator"`, "&lt;script&gt;"} {
			if !strings.Contains(page, want) {
				t.Errorf("login page lacks %s:\n%s", want, page)
			}
		}
		if strings.Contains(page, "<script>") {
			t.Errorf("login page holds the state as markup:\n%s", page)
		}
	})

	t.Run("SignIn", func(t *testing.T) {
		for _, c := range []struct {
			name, scope string
			grants      []string
		}{
			{"Admin", "openid broker:admin", []string{"openid", "broker:admin"}},
			{"WithoutAdmin", "openid", []string{"openid"}},
			// A scope that was not asked for is not granted.
			{"OnlyAskedFor", "openid", []string{"openid", "broker:tokens"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				p := newPKCE(c.name)
				back := signIn(t, s, authorizeQuery(p), "ops@partner", c.grants...)
				if got := back.Get("state"); got != "st-1" {
					t.Errorf("state = %q, want st-1", got)
				}
				status, tok, header := exchange(t, s, tokenForm(back.Get("code"), p))
				if status != http.StatusOK {
					t.Fatalf("token: %d %v", status, tok)
				}
				if got := header.Get("Access-Control-Allow-Origin"); got != consoleOrigin {
					t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, consoleOrigin)
				}
				if tok["scope"] != c.scope || tok["token_type"] != "Bearer" || tok["expires_in"] != float64(3600) {
					t.Errorf("token answer = %v", tok)
				}
				claims, err := parseWithJWKS(t, s, tok["access_token"].(string), time.Now())
				if err != nil {
					t.Fatal(err)
				}
				if claims.Subject != "ops@partner" || claims.ClientID != consoleClient || claims.Scope != c.scope {
					t.Errorf("claims: sub %q client_id %q scope %q, want ops@partner %s %q", claims.Subject, claims.ClientID, claims.Scope, consoleClient, c.scope)
				}
			})
		}
	})

	t.Run("CodeRefused", func(t *testing.T) {
		p := newPKCE("refused")
		cases := []struct {
			name   string
			change func(url.Values)
		}{
			{"WrongVerifier", func(f url.Values) { f.Set("code_verifier", newPKCE("other").verifier) }},
			{"WrongRedirectURI", func(f url.Values) { f.Set("redirect_uri", consoleOrigin+"/elsewhere/") }},
			{"NoVerifier", func(f url.Values) { f.Del("code_verifier") }},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code := signIn(t, s, authorizeQuery(p), "ops", "openid").Get("code")
				form := tokenForm(code, p)
				c.change(form)
				if status, body, _ := exchange(t, s, form); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
					t.Errorf("token: %d %v, want 400 invalid_grant", status, body)
				}
				// The failed attempt used the code up.
				if status, body, _ := exchange(t, s, tokenForm(code, p)); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
					t.Errorf("token after a failed attempt: %d %v, want 400 invalid_grant", status, body)
				}
			})
		}
		t.Run("Twice", func(t *testing.T) {
			code := signIn(t, s, authorizeQuery(p), "ops", "openid").Get("code")
			if status, body, _ := exchange(t, s, tokenForm(code, p)); status != http.StatusOK {
				t.Fatalf("first exchange: %d %v", status, body)
			}
			if status, body, _ := exchange(t, s, tokenForm(code, p)); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("second exchange: %d %v, want 400 invalid_grant", status, body)
			}
		})
		t.Run("UnknownClient", func(t *testing.T) {
			form := tokenForm("whatever", p)
			form.Set("client_id", "nobody")
			if status, body, _ := exchange(t, s, form); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("token: %d %v, want 401 invalid_client", status, body)
			}
		})
		t.Run("GrantType", func(t *testing.T) {
			form := tokenForm("whatever", p)
			form.Set("grant_type", "password")
			if status, body, _ := exchange(t, s, form); status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
				t.Errorf("token: %d %v, want 400 unsupported_grant_type", status, body)
			}
		})
	})

	t.Run("RequestRefused", func(t *testing.T) {
		p := newPKCE("request")
		// A wrong client or redirect URI gets a page: nobody to send it back to.
		for name, change := range map[string]func(url.Values){
			"UnknownClient":    func(q url.Values) { q.Set("client_id", "nobody") },
			"ForeignRedirect":  func(q url.Values) { q.Set("redirect_uri", "http://evil.example/console/") },
			"NoRedirectURI":    func(q url.Values) { q.Del("redirect_uri") },
			"RedirectWithPath": func(q url.Values) { q.Set("redirect_uri", consoleRedirect+"x") },
		} {
			q := authorizeQuery(p)
			change(q)
			if status, body := get(t, s.URL()+sim.AuthorizePath+"?"+q.Encode()); status != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", name, status, body)
			}
		}
		// Anything else goes back to the client as an OAuth error.
		for name, c := range map[string]struct {
			change func(url.Values)
			error  string
		}{
			"NoPKCE":        {func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
			"PlainPKCE":     {func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
			"ResponseType":  {func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
			"ForeignTarget": {func(q url.Values) { q.Set("audience", "someone-else") }, "invalid_target"},
		} {
			q := authorizeQuery(p)
			c.change(q)
			resp, err := noRedirects.Get(s.URL() + sim.AuthorizePath + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			back := redirectQuery(t, resp, consoleRedirect)
			if back.Get("error") != c.error || back.Get("state") != "st-1" || back.Has("code") {
				t.Errorf("%s: redirected with %v, want error %s and the state", name, back, c.error)
			}
		}
		t.Run("Denied", func(t *testing.T) {
			form := authorizeQuery(p)
			form.Set("decision", "deny")
			resp, err := noRedirects.PostForm(s.URL()+sim.AuthorizePath, form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if back := redirectQuery(t, resp, consoleRedirect); back.Get("error") != "access_denied" || back.Has("code") {
				t.Errorf("redirected with %v, want access_denied", back)
			}
		})
		t.Run("AudienceOfServer", func(t *testing.T) {
			q := authorizeQuery(p)
			q.Set("audience", s.Audience())
			q.Set("resource", s.Audience())
			if back := signIn(t, s, q, "ops", "openid"); !back.Has("code") {
				t.Errorf("redirected with %v, want a code", back)
			}
		})
	})

	t.Run("CrossOrigin", func(t *testing.T) {
		req, err := http.NewRequest("OPTIONS", s.URL()+sim.TokenPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "http://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Access-Control-Allow-Origin for a foreign origin = %q, want none", got)
		}
	})
}
