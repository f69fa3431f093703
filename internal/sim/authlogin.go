package sim

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Paths of an AuthServer's login flow, which its discovery documents name as
// authorization_endpoint and token_endpoint.
const (
	AuthorizePath = "/authorize"
	TokenPath     = "/token"
)

// LoginUser is the user the login page of an AuthServer offers to sign in as
// until another one is typed in.
const LoginUser = "operator"

// Lifetimes in the login flow.
const (
	// LoginCodeTTL is how long an authorization code of the login flow can
	// be exchanged, once.
	LoginCodeTTL = time.Minute
	// LoginTokenTTL is how long an access token of the login flow is valid.
	LoginTokenTTL = time.Hour
)

// publicClient is a client registered with AddPublicClient.
type publicClient struct {
	redirectURIs []string
	origins      []string
}

// loginCode is an authorization code the login flow issued and that was not
// exchanged yet.
type loginCode struct {
	clientID, redirectURI, challenge, subject string
	scopes                                    []string
	expires                                   time.Time
}

// AddPublicClient registers clientID as a public client of the login flow
// (OAuth authorization code with PKCE, as a single-page application signs
// in): the authorization endpoint accepts it with one of redirectURIs exactly,
// PKCE's S256 method required, and the token endpoint exchanges its codes
// without a secret and answers cross-origin requests from the redirect URIs'
// origins. Registering a client again replaces its redirect URIs. It returns
// an error when clientID is empty or a redirect URI is not an absolute http or
// https URL without a fragment.
func (s *AuthServer) AddPublicClient(clientID string, redirectURIs ...string) error {
	if clientID == "" {
		return fmt.Errorf("sim: auth server: a public client needs an id")
	}
	if len(redirectURIs) == 0 {
		return fmt.Errorf("sim: auth server: public client %q needs a redirect URI", clientID)
	}
	c := publicClient{redirectURIs: slices.Clone(redirectURIs)}
	for _, raw := range redirectURIs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("sim: auth server: public client %q: redirect URI %q is not an absolute http(s) URL without a fragment", clientID, raw)
		}
		if o := u.Scheme + "://" + u.Host; !slices.Contains(c.origins, o) {
			c.origins = append(c.origins, o)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clients == nil {
		s.clients = map[string]publicClient{}
	}
	s.clients[clientID] = c
	return nil
}

// client returns the public client clientID and whether there is one.
func (s *AuthServer) client(clientID string) (publicClient, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[clientID]
	return c, ok
}

// authorizeRequest is an authorization request of the login flow, as the
// authorization endpoint takes it (RFC 6749 §4.1.1, RFC 7636 §4.3).
type authorizeRequest struct {
	ClientID, RedirectURI, State, Challenge string
	Scopes                                  []string
	// Target is the audience or resource parameter, if any.
	Target string
}

// readAuthorize reads and checks an authorization request. When it is wrong,
// it returns an OAuth error code and a description, to send to the client's
// redirect URI; or, when the client or redirect URI is wrong, a description
// alone, for the answer is then a page, never a redirect (RFC 6749
// §4.1.2.1).
func (s *AuthServer) readAuthorize(q url.Values) (authorizeRequest, string, string) {
	req := authorizeRequest{
		ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"), State: q.Get("state"),
		Challenge: q.Get("code_challenge"), Scopes: strings.Fields(q.Get("scope")),
		Target: q.Get("audience"),
	}
	if req.Target == "" {
		req.Target = q.Get("resource")
	}
	switch c, ok := s.client(req.ClientID); {
	case !ok:
		return req, "", fmt.Sprintf("unknown client %q", req.ClientID)
	case !slices.Contains(c.redirectURIs, req.RedirectURI):
		return req, "", fmt.Sprintf("redirect_uri %q is not registered for client %q", req.RedirectURI, req.ClientID)
	}
	switch {
	case q.Get("response_type") != "code":
		return req, "unsupported_response_type", "response_type must be code"
	case req.Challenge == "" || q.Get("code_challenge_method") != "S256":
		return req, "invalid_request", "PKCE is required: code_challenge with code_challenge_method S256"
	case len(req.Challenge) != 43:
		return req, "invalid_request", "code_challenge must be 43 characters of base64url (SHA-256)"
	case req.Target != "" && req.Target != s.audience:
		return req, "invalid_target", fmt.Sprintf("this server mints tokens for %q only", s.audience)
	}
	return req, "", ""
}

// redirectError sends the browser back to the client with an OAuth error.
func redirectError(w http.ResponseWriter, r *http.Request, req authorizeRequest, code, description string) {
	v := url.Values{"error": {code}, "error_description": {description}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	http.Redirect(w, r, withQuery(req.RedirectURI, v), http.StatusSeeOther)
}

// withQuery returns raw with v added to its query.
func withQuery(raw string, v url.Values) string {
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	return raw + sep + v.Encode()
}

// loginPage is the authorization endpoint's page: who signs in, and which of
// the scopes asked for they grant, each ticked at first.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Partner sign-in (simulated)</title></head>
<body>
<h1>Partner sign-in (simulated)</h1>
<p>The client <code>{{.ClientID}}</code> asks to sign you in.</p>
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<p><label>User <input id="user" name="user" value="{{.User}}"></label></p>
<fieldset><legend>Scopes to grant</legend>
{{range .Scopes}}<label><input type="checkbox" name="grant" value="{{.}}" data-scope="{{.}}" checked> {{.}}</label><br>
{{end}}</fieldset>
<p><button id="sign-in" name="decision" value="allow">Sign in</button>
<button id="deny" name="decision" value="deny">Deny</button></p>
</form>
</body></html>
`))

// serveAuthorize answers the authorization endpoint: GET shows the login
// page, POST (the page's form) issues a code, or the refusal, and sends the
// browser back to the client.
func (s *AuthServer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	params := r.Form
	if r.Method == http.MethodPost {
		params = r.PostForm
	}
	req, code, description := s.readAuthorize(params)
	switch {
	case code == "" && description != "":
		http.Error(w, "invalid authorization request: "+description, http.StatusBadRequest)
		return
	case code != "":
		redirectError(w, r, req, code, description)
		return
	}
	if r.Method == http.MethodGet {
		hidden := map[string]string{}
		for _, k := range []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "audience", "resource"} {
			if v := params.Get(k); v != "" {
				hidden[k] = v
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = loginPage.Execute(w, map[string]any{
			"ClientID": req.ClientID, "Action": AuthorizePath, "Hidden": hidden, "User": LoginUser, "Scopes": req.Scopes,
		})
		return
	}
	if params.Get("decision") == "deny" {
		redirectError(w, r, req, "access_denied", "the user denied the request")
		return
	}
	user := strings.TrimSpace(params.Get("user"))
	if user == "" {
		redirectError(w, r, req, "access_denied", "no user signed in")
		return
	}
	var granted []string
	for _, sc := range params["grant"] {
		if slices.Contains(req.Scopes, sc) && !slices.Contains(granted, sc) {
			granted = append(granted, sc)
		}
	}
	code = randomHex(16)
	s.mu.Lock()
	if s.codes == nil {
		s.codes = map[string]loginCode{}
	}
	s.codes[code] = loginCode{
		clientID: req.ClientID, redirectURI: req.RedirectURI, challenge: req.Challenge,
		subject: user, scopes: granted, expires: s.now().Add(LoginCodeTTL),
	}
	s.mu.Unlock()
	v := url.Values{"code": {code}}
	if req.State != "" {
		v.Set("state", req.State)
	}
	http.Redirect(w, r, withQuery(req.RedirectURI, v), http.StatusSeeOther)
}

// allowOrigin lets the browser read the token endpoint's answer when the
// request comes from the origin of a public client's redirect URI.
func (s *AuthServer) allowOrigin(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.clients {
		if slices.Contains(c.origins, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			return
		}
	}
}

// serveToken answers the token endpoint: the authorization_code grant of a
// public client, with PKCE (RFC 6749 §4.1.3, RFC 7636 §4.5), and the
// client-credentials grant of a registered client (serveClientCredentials).
// Errors are RFC 6749 §5.2's JSON. A code is exchanged at most once: any
// attempt uses it up.
func (s *AuthServer) serveToken(w http.ResponseWriter, r *http.Request) {
	s.allowOrigin(w, r)
	if r.Method == http.MethodOptions { // a CORS preflight
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	fail := func(status int, code, description string) { oauthError(w, status, code, description) }
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		fail(http.StatusMethodNotAllowed, "invalid_request", "POST the token request")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	f := r.PostForm
	switch f.Get("grant_type") {
	case "client_credentials":
		s.serveClientCredentials(w, r)
		return
	case "authorization_code":
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or client_credentials")
		return
	}
	if _, ok := s.client(f.Get("client_id")); !ok {
		fail(http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	s.mu.Lock()
	c, ok := s.codes[f.Get("code")]
	delete(s.codes, f.Get("code"))
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	switch {
	case !ok || s.now().After(c.expires):
		fail(http.StatusBadRequest, "invalid_grant", "the code is unknown, used or expired")
		return
	case c.clientID != f.Get("client_id") || c.redirectURI != f.Get("redirect_uri"):
		fail(http.StatusBadRequest, "invalid_grant", "the code was issued to another client or redirect_uri")
		return
	case subtle.ConstantTimeCompare([]byte(challenge), []byte(c.challenge)) != 1:
		fail(http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	token, err := s.Sign(s.Claims(c.subject, c.clientID, c.scopes, LoginTokenTTL))
	if err != nil {
		fail(http.StatusInternalServerError, "server_error", "cannot sign the token")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token, "token_type": "Bearer",
		"expires_in": int(LoginTokenTTL.Seconds()), "scope": strings.Join(c.scopes, " "),
	})
}
