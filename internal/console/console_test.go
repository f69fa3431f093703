package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/console"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// startAuth runs the simulated authorization server until the test ends.
func startAuth(t *testing.T) *sim.AuthServer {
	t.Helper()
	s, err := sim.NewAuthServer(sim.AuthServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serve runs h on a loopback port until the test ends and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(console.Path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func newHandler(t *testing.T, opts console.Options) *console.Handler {
	t.Helper()
	h, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNew(t *testing.T) {
	for _, opts := range []console.Options{
		{Issuer: "https://auth.partner.example"},
		{ClientID: "broker-console"},
		{ClientID: "broker-console", Issuer: "partner"},
	} {
		if _, err := console.New(opts); err == nil {
			t.Errorf("New(%+v): got nil error, want one", opts)
		}
	}
}

func TestHandler_Config(t *testing.T) {
	auth := startAuth(t)
	opts := console.Options{
		ClientID: "broker-console", Issuer: auth.Issuer(), Scopes: []string{"openid", "broker:admin"},
		AdminScope: "broker:admin", Skills: []string{"baby", "home"},
	}
	want := map[string]any{
		"client_id":              "broker-console",
		"authorization_endpoint": auth.URL() + sim.AuthorizePath,
		"token_endpoint":         auth.URL() + sim.TokenPath,
		"scope":                  "openid broker:admin",
		"audience":               "",
		"admin_scope":            "broker:admin",
		"skills":                 []any{"baby", "home"},
	}

	t.Run("PublicURL", func(t *testing.T) {
		o := opts
		o.PublicURL, o.Audience = "https://broker.partner.example/ops/", "https://broker.partner.example"
		base := serve(t, newHandler(t, o))
		status, header, body := get(t, base+"/console/config.json")
		if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
			t.Fatalf("config.json: %d %s %s", status, header.Get("Content-Type"), body)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		w := map[string]any{"redirect_uri": "https://broker.partner.example/ops/console/", "audience": "https://broker.partner.example"}
		for k, v := range want {
			if _, ok := w[k]; !ok {
				w[k] = v
			}
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("config.json (-want +got):\n%s", diff)
		}
	})

	t.Run("ListenAddress", func(t *testing.T) {
		base := serve(t, newHandler(t, opts))
		_, _, body := get(t, base+"/console/config.json")
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if got["redirect_uri"] != base+"/console/" {
			t.Errorf("redirect_uri = %v, want %s/console/", got["redirect_uri"], base)
		}
	})
}

func TestHandler_Discovery(t *testing.T) {
	var hits atomic.Int32
	var doc atomic.Value
	doc.Store("")
	var issuer string
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		d := doc.Load().(string)
		if d == "" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, strings.ReplaceAll(d, "ISSUER", issuer))
	}))
	t.Cleanup(auth.Close)
	issuer = auth.URL
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	base := serve(t, newHandler(t, console.Options{ClientID: "c", Issuer: issuer, Now: clock}))
	configStatus := func() (int, string) {
		status, _, body := get(t, base+"/console/config.json")
		return status, body
	}
	const good = `{"issuer":"ISSUER","authorization_endpoint":"ISSUER/authorize","token_endpoint":"https://tokens.partner.example/token","code_challenge_methods_supported":["S256"]}`

	for _, tc := range []struct{ name, doc, want string }{
		{"Down", "", "503 Service Unavailable"},
		{"NotJSON", "<html>", "is not JSON"},
		{"OtherIssuer", `{"issuer":"https://elsewhere.example","authorization_endpoint":"https://a/x","token_endpoint":"https://a/t"}`, `names the issuer \"https://elsewhere.example\"`},
		{"NoTokenEndpoint", `{"issuer":"ISSUER","authorization_endpoint":"ISSUER/authorize"}`, "has no token_endpoint"},
		{"NoAuthorizationEndpoint", `{"issuer":"ISSUER","token_endpoint":"ISSUER/token"}`, "has no authorization_endpoint"},
		{"PlainPKCE", `{"issuer":"ISSUER","authorization_endpoint":"ISSUER/a","token_endpoint":"ISSUER/t","code_challenge_methods_supported":["plain"]}`, "does not support PKCE with S256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc.Store(tc.doc)
			status, body := configStatus()
			if status != http.StatusServiceUnavailable || !strings.Contains(body, tc.want) {
				t.Errorf("config.json: %d %s, want 503 with %q", status, body, tc.want)
			}
			// The page still loads, and says why signing in cannot work.
			if status, header, _ := get(t, base+"/console/"); status != http.StatusOK || !strings.Contains(header.Get("Content-Security-Policy"), "connect-src 'self';") {
				t.Errorf("page: %d, CSP %q", status, header.Get("Content-Security-Policy"))
			}
		})
	}

	t.Run("Cached", func(t *testing.T) {
		doc.Store(good)
		if status, body := configStatus(); status != http.StatusOK {
			t.Fatalf("config.json: %d %s", status, body)
		}
		before := hits.Load()
		_, header, _ := get(t, base+"/console/")
		if !strings.Contains(header.Get("Content-Security-Policy"), "connect-src 'self' https://tokens.partner.example;") {
			t.Errorf("CSP %q does not allow the token endpoint's origin", header.Get("Content-Security-Policy"))
		}
		doc.Store("") // down: the document read before serves
		if status, body := configStatus(); status != http.StatusOK {
			t.Fatalf("config.json while cached: %d %s", status, body)
		}
		if got := hits.Load(); got != before {
			t.Errorf("the discovery document was read %d more times within %v", got-before, console.DiscoveryTTL)
		}
		now = now.Add(console.DiscoveryTTL)
		if status, body := configStatus(); status != http.StatusOK {
			t.Errorf("config.json after the TTL with the server down: %d %s, want the document read before", status, body)
		}
		if got := hits.Load(); got != before+1 {
			t.Errorf("the discovery document was read %d more times after the TTL, want 1", got-before)
		}
	})
}

func TestHandler_ServeHTTP(t *testing.T) {
	auth := startAuth(t)
	base := serve(t, newHandler(t, console.Options{ClientID: "broker-console", Issuer: auth.Issuer()}))

	t.Run("Files", func(t *testing.T) {
		for path, contentType := range map[string]string{
			"/console/":            "text/html; charset=utf-8",
			"/console/console.js":  "text/javascript; charset=utf-8",
			"/console/console.css": "text/css; charset=utf-8",
		} {
			status, header, body := get(t, base+path)
			if status != http.StatusOK || header.Get("Content-Type") != contentType || body == "" {
				t.Errorf("%s: %d %q, %d bytes", path, status, header.Get("Content-Type"), len(body))
			}
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
				"Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
			} {
				if got := header.Get(k); got != want {
					t.Errorf("%s: %s = %q, want %q", path, k, got, want)
				}
			}
		}
	})

	t.Run("ContentSecurityPolicy", func(t *testing.T) {
		_, header, _ := get(t, base+"/console/")
		csp := header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self';", "style-src 'self';", "connect-src 'self' " + auth.URL() + ";", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("CSP %q allows something unsafe", csp)
		}
	})

	t.Run("NoInlineScriptOrStyle", func(t *testing.T) {
		_, _, page := get(t, base+"/console/")
		for _, m := range regexp.MustCompile(`(?is)<script\b[^>]*>`).FindAllString(page, -1) {
			if !strings.Contains(m, `src="console.js"`) {
				t.Errorf("the page has an inline script: %s", m)
			}
		}
		if regexp.MustCompile(`(?is)<script\b[^>]*>\s*[^<\s]`).MatchString(page) {
			t.Error("a script element of the page has content")
		}
		if m := regexp.MustCompile(`(?i)\son[a-z]+\s*=|\sstyle\s*=|<style`).FindString(page); m != "" {
			t.Errorf("the page has an inline handler or style: %q", m)
		}
	})

	t.Run("ScriptWritesTextOnly", func(t *testing.T) {
		// Data reaches the page as text nodes and attributes: the script
		// never parses markup or code.
		_, _, script := get(t, base+"/console/console.js")
		for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setTimeout('", "javascript:"} {
			if strings.Contains(script, sink) {
				t.Errorf("console.js uses %s", sink)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		for _, path := range []string{"/console/index.html", "/console/static/console.js", "/console/nope", "/console/../go.mod"} {
			if status, _, _ := get(t, base+path); status != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", path, status)
			}
		}
	})

	t.Run("MethodNotAllowed", func(t *testing.T) {
		resp, err := http.Post(base+"/console/", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d, want 405", resp.StatusCode)
		}
	})
}
