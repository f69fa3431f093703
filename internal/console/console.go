// Package console is the operator console: a web page, embedded in the
// broker's binary and served at /console/, through which operators see every
// link, its events and its deliveries, and refresh or delete it.
//
// The page signs operators in at the partner's authorization server with the
// OAuth authorization code flow and PKCE (RFC 7636), as a public client: the
// browser is sent to the authorization endpoint, comes back to /console/ with
// a code, and exchanges it at the token endpoint itself. The broker finds both
// endpoints in the issuer's discovery document (BROKER_JWT_ISSUER +
// /.well-known/openid-configuration) and hands them to the page, with the
// client id, the redirect URI and the scopes, at /console/config.json. The
// page keeps the access token in the tab's session storage (no cookie) and
// calls the broker's own HTTP API with it, so that the API's checks are the
// console's: without the admin scope, the page shows which scope is missing
// and nothing else.
//
// The page is plain HTML, CSS and JavaScript without a build step. It builds
// every element with the DOM's textContent, never markup from data, so a user
// id or an error text is shown as text; a Content-Security-Policy header
// allows scripts and styles of the console's own files only, and connections
// to the broker and the token endpoint only. It never shows a token, a code or
// a secret.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Path is where the console is served; its redirect URI is the broker's
// public URL followed by Path.
const Path = "/console/"

// DiscoveryTTL is how long the console keeps the discovery document it read;
// one that could not be read is asked for again at the next request.
const DiscoveryTTL = time.Hour

// discoveryTimeout bounds one read of the discovery document.
const discoveryTimeout = 10 * time.Second

//go:embed static
var static embed.FS

// files are the console's files, by their path below Path, with their
// content types.
var files = map[string]string{
	"":            "text/html; charset=utf-8", // index.html
	"console.js":  "text/javascript; charset=utf-8",
	"console.css": "text/css; charset=utf-8",
}

// Options configure a Handler.
type Options struct {
	// ClientID is the console's public client at the partner's authorization
	// server (BROKER_CONSOLE_CLIENT_ID). Required.
	ClientID string
	// Issuer is the partner's issuer (BROKER_JWT_ISSUER), an http(s) URL: the
	// discovery document is Issuer + "/.well-known/openid-configuration", and
	// its issuer must be Issuer. Required.
	Issuer string
	// PublicURL is the broker's URL as browsers reach it (BROKER_PUBLIC_URL);
	// empty means "http://" and the host the request names, the HTTP
	// gateway's listen address when browsers reach it directly.
	PublicURL string
	// Scopes are the scopes the console asks for.
	Scopes []string
	// Audience, when set, is sent as audience and resource in the
	// authorization request, and as resource in the token request.
	Audience string
	// AdminScope is the scope name that grants the admin right, which the
	// page names when a sign-in lacks it.
	AdminScope string
	// Skills are the ids of the skills the broker serves, for the page's
	// filters.
	Skills []string
	// Client reads the discovery document; nil means http.DefaultClient. Each
	// read is bounded to 10 seconds.
	Client *http.Client
	// Logger receives a line when the discovery document cannot be read; nil
	// discards.
	Logger *slog.Logger
	// Now is the clock of the discovery document's cache; nil means
	// time.Now.
	Now func() time.Time
}

// Handler serves the console: its page, script and style, and the page's
// configuration at config.json. It is safe for concurrent use.
type Handler struct {
	opts  Options
	index []byte

	mu        sync.Mutex
	discovery *discovery
	readAt    time.Time
}

// discovery is what the console needs of the issuer's discovery document.
type discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	ChallengeMethods      []string `json:"code_challenge_methods_supported"`
}

// New returns the console's handler. It returns an error when opts lacks the
// client id, or the issuer is not an http(s) URL. The discovery document is
// read at the first request that needs it, not here: an authorization server
// that cannot be reached at start-up only keeps the console from signing in
// until it can be.
func New(opts Options) (*Handler, error) {
	if opts.ClientID == "" {
		return nil, errors.New("console: no client id")
	}
	if u, err := url.Parse(opts.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("console: issuer %q is not an http(s) URL", opts.Issuer)
	}
	if opts.Client == nil {
		opts.Client = http.DefaultClient
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	index, err := static.ReadFile("static/index.html")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return &Handler{opts: opts, index: index}, nil
}

// ServeHTTP answers GET and HEAD requests below Path: the page at Path, its
// files, and config.json, each with the console's security headers. Other
// paths are 404, other methods 405. config.json answers 503 with
// {"error":"…"} when the discovery document cannot be read or lacks what the
// console needs.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, Path)
	contentType, known := files[name]
	switch {
	case !ok || (!known && name != "config.json"):
		http.NotFound(w, r)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var (
		d    *discovery
		derr error
	)
	if name == "" || name == "config.json" { // the page's policy names the token endpoint
		d, derr = h.readDiscovery(r.Context())
	}
	h.secure(w, d)
	if name == "config.json" {
		h.serveConfig(w, r, d, derr)
		return
	}
	body := h.index
	if name != "" {
		var err error
		if body, err = static.ReadFile("static/" + name); err != nil {
			http.NotFound(w, r)
			return
		}
	}
	w.Header().Set("Content-Type", contentType)
	_, _ = w.Write(body)
}

// secure sets the headers of every answer: a Content-Security-Policy that
// allows the console's own scripts and styles only (no inline script) and
// connections to the broker and, when d is known, the token endpoint's
// origin; no framing, no sniffing, no referrer (a code in the URL must not
// leak), no caching.
func (h *Handler) secure(w http.ResponseWriter, d *discovery) {
	connect := "'self'"
	if d != nil {
		if u, err := url.Parse(d.TokenEndpoint); err == nil {
			connect += " " + u.Scheme + "://" + u.Host
		}
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src "+connect+
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
}

// pageConfig is config.json: what the page needs to sign in and to call the
// API. It holds no secret: the client is public.
type pageConfig struct {
	ClientID              string   `json:"client_id"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	RedirectURI           string   `json:"redirect_uri"`
	Scope                 string   `json:"scope"`
	Audience              string   `json:"audience"`
	AdminScope            string   `json:"admin_scope"`
	Skills                []string `json:"skills"`
}

// serveConfig writes config.json, or the error of the discovery document.
func (h *Handler) serveConfig(w http.ResponseWriter, r *http.Request, d *discovery, derr error) {
	w.Header().Set("Content-Type", "application/json")
	if derr != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": derr.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(pageConfig{
		ClientID:              h.opts.ClientID,
		AuthorizationEndpoint: d.AuthorizationEndpoint,
		TokenEndpoint:         d.TokenEndpoint,
		RedirectURI:           h.redirectURI(r),
		Scope:                 strings.Join(h.opts.Scopes, " "),
		Audience:              h.opts.Audience,
		AdminScope:            h.opts.AdminScope,
		Skills:                append([]string{}, h.opts.Skills...),
	})
}

// redirectURI returns the console's redirect URI: PublicURL + Path, or, with
// no PublicURL, "http://", the host the browser asked for and Path, which is
// the HTTP listen address when the browser reaches the broker directly. The
// browser must come back to the origin it left from, where the tab keeps the
// PKCE verifier. A forged host gains nothing: the authorization server sends
// codes to registered redirect URIs only.
func (h *Handler) redirectURI(r *http.Request) string {
	if h.opts.PublicURL != "" {
		return h.opts.PublicURL + Path
	}
	return "http://" + r.Host + Path
}

// readDiscovery returns the discovery document, read at most once per
// DiscoveryTTL while it can be read. Concurrent callers wait for one read.
func (h *Handler) readDiscovery(ctx context.Context) (*discovery, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.discovery != nil && h.opts.Now().Sub(h.readAt) < DiscoveryTTL {
		return h.discovery, nil
	}
	d, err := h.fetchDiscovery(ctx)
	if err != nil {
		h.opts.Logger.Warn("the console cannot sign in: the discovery document cannot be read", "error", err)
		if h.discovery != nil {
			return h.discovery, nil // the one read before is better than none
		}
		return nil, err
	}
	h.discovery, h.readAt = d, h.opts.Now()
	return d, nil
}

// fetchDiscovery reads and checks the discovery document: its issuer must be
// the configured one (OpenID Connect Discovery §4.3), its endpoints absolute
// http(s) URLs, and PKCE's S256 method supported when it lists the methods.
func (h *Handler) fetchDiscovery(ctx context.Context) (*discovery, error) {
	where := strings.TrimRight(h.opts.Issuer, "/") + "/.well-known/openid-configuration"
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, fmt.Errorf("the discovery document %s: %w", where, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the discovery document %s cannot be read: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the discovery document %s answered %s", where, resp.Status)
	}
	var d discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("the discovery document %s is not JSON: %w", where, err)
	}
	switch {
	case d.Issuer != h.opts.Issuer:
		return nil, fmt.Errorf("the discovery document %s names the issuer %q, not %q", where, d.Issuer, h.opts.Issuer)
	case !httpURL(d.AuthorizationEndpoint):
		return nil, fmt.Errorf("the discovery document %s has no authorization_endpoint", where)
	case !httpURL(d.TokenEndpoint):
		return nil, fmt.Errorf("the discovery document %s has no token_endpoint", where)
	case len(d.ChallengeMethods) > 0 && !slices.Contains(d.ChallengeMethods, "S256"):
		return nil, fmt.Errorf("the authorization server of %s does not support PKCE with S256", where)
	}
	return &d, nil
}

// httpURL reports whether s is an absolute http or https URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
