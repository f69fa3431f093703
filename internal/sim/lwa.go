package sim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// LWATokenPath is the path of Login with Amazon's token endpoint, on the simulator
// as on api.amazon.com.
const LWATokenPath = "/auth/o2/token"

// Defaults of LWAOptions.
const (
	// DefaultLWAClientID is the client id the simulator accepts when LWAOptions.ClientID is empty.
	DefaultLWAClientID = "amzn1.application-oa2-client.sim"
	// DefaultLWAClientSecret is the client secret the simulator accepts when LWAOptions.ClientSecret is empty.
	DefaultLWAClientSecret = "sim-lwa-client-secret"
	// DefaultLWAAccessTokenLifetime is how long access tokens live when
	// LWAOptions.AccessTokenLifetime is zero: an hour, as on LWA.
	DefaultLWAAccessTokenLifetime = time.Hour
	// DefaultLWACodeLifetime is how long an unused authorization code stays
	// valid when LWAOptions.CodeLifetime is zero: five minutes, as on LWA.
	DefaultLWACodeLifetime = 5 * time.Minute
)

// lwaMaxBody is the largest request body the simulator reads.
const lwaMaxBody = 64 << 10

// LWAOptions configures an LWA simulator. The zero value is usable.
type LWAOptions struct {
	// Addr is the address Start listens on. It must be a loopback address;
	// empty means "127.0.0.1:0", a free port.
	Addr string
	// ClientID and ClientSecret are the credentials of the default client,
	// for which IssueCode and IssueCodeFor mint codes; empty means
	// DefaultLWAClientID and DefaultLWAClientSecret. AddClient registers more
	// clients, one per skill, as LWA knows one client per skill.
	ClientID     string
	ClientSecret string
	// AccessTokenLifetime is the lifetime of issued access tokens, sent as
	// expires_in; zero means DefaultLWAAccessTokenLifetime.
	AccessTokenLifetime time.Duration
	// CodeLifetime is how long an authorization code from IssueCode can be
	// exchanged; zero means DefaultLWACodeLifetime.
	CodeLifetime time.Duration
	// ExpiresInAsString sends expires_in as a JSON string ("3600") instead of a
	// number, as some OAuth servers do.
	ExpiresInAsString bool
	// NoRotation turns refresh-token rotation off: a refresh answers without a
	// refresh_token and the presented one stays valid. By default every
	// refresh returns a new refresh token and invalidates the presented one.
	NoRotation bool
	// RevokeOnCodeReuse revokes the grant made from an authorization code when
	// that code is presented again, as RFC 6749 §4.1.2 recommends.
	RevokeOnCodeReuse bool
	// Now is the simulator's clock; nil means time.Now. Code and token expiry
	// follow it, so tests can move time forward without sleeping.
	Now func() time.Time
}

// LWAStats counts the requests an LWA simulator served.
type LWAStats struct {
	// Requests counts every request to the token endpoint, failed, faulted and
	// malformed ones included.
	Requests int
	// Exchanges counts requests with grant_type=authorization_code, whatever
	// their answer; ExchangesOK those answered with tokens.
	Exchanges   int
	ExchangesOK int
	// Refreshes counts requests with grant_type=refresh_token, whatever their
	// answer; RefreshesOK those answered with tokens.
	Refreshes   int
	RefreshesOK int
}

// LWA simulates Login with Amazon's token endpoint (POST /auth/o2/token): it
// mints authorization codes for tests, exchanges them for access and refresh
// tokens, rotates refresh tokens, and fails on demand. It knows several
// clients (one per skill), and binds each code and refresh token to the client
// it was issued for: another client presenting it gets invalid_grant. LWA is an
// http.Handler; Start serves it on a loopback port. Its methods are safe for
// concurrent use.
type LWA struct {
	opts LWAOptions

	mu        sync.Mutex
	clients   map[string]string     // client id → client secret, the default client's included
	codes     map[string]*lwaCode   // authorization code → its state
	refresh   map[string]*lwaGrant  // currently valid refresh token → grant
	access    map[string]*lwaAccess // issued access token → grant and expiry
	faults    faultQueue            // injected failures and delay
	expiresIn *string               // SetExpiresIn's raw expires_in, or nil
	hold      chan struct{}         // HoldAnswers' gate, or nil
	held      int                   // answers waiting at the gate
	stats     LWAStats
	lastSweep time.Time

	server server
}

var _ http.Handler = (*LWA)(nil)

// lwaGrant is one user's authorization of one client: what a code was
// exchanged for, and what its refresh tokens keep alive.
type lwaGrant struct {
	user    string
	client  string
	revoked bool
}

type lwaCode struct {
	user    string
	client  string // the only client that may exchange the code
	expires time.Time
	used    bool
	revoked bool
	grant   *lwaGrant // set once exchanged
}

type lwaAccess struct {
	grant   *lwaGrant
	expires time.Time
}

// NewLWA returns an LWA simulator configured by opts. It does not listen until
// Start is called; as an http.Handler it can also be mounted elsewhere.
func NewLWA(opts LWAOptions) *LWA {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultLWAClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultLWAClientSecret
	}
	if opts.AccessTokenLifetime <= 0 {
		opts.AccessTokenLifetime = DefaultLWAAccessTokenLifetime
	}
	if opts.CodeLifetime <= 0 {
		opts.CodeLifetime = DefaultLWACodeLifetime
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &LWA{
		opts:    opts,
		clients: map[string]string{opts.ClientID: opts.ClientSecret},
		codes:   make(map[string]*lwaCode),
		refresh: make(map[string]*lwaGrant),
		access:  make(map[string]*lwaAccess),
	}
}

// ClientID returns the default client's id: LWAOptions.ClientID, or
// DefaultLWAClientID.
func (l *LWA) ClientID() string { return l.opts.ClientID }

// ClientSecret returns the default client's secret: LWAOptions.ClientSecret, or
// DefaultLWAClientSecret.
func (l *LWA) ClientSecret() string { return l.opts.ClientSecret }

// AddClient registers another client with its secret, as when a partner
// creates another skill: from then on the token endpoint accepts its
// credentials, and IssueCodeForClient mints codes for it. It returns an error
// when id or secret is empty or id is already registered (the default client's
// included); the registered clients are left as they were then.
func (l *LWA) AddClient(id, secret string) error {
	if id == "" || secret == "" {
		return errors.New("sim: an LWA client needs an id and a secret")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, taken := l.clients[id]; taken {
		return fmt.Errorf("sim: LWA client %q is already registered", id)
	}
	l.clients[id] = secret
	return nil
}

// Start listens on the configured loopback address and serves the token endpoint
// in the background until Close is called or ctx is done; in-flight requests see
// their context cancelled then. It returns an error when the address is not a
// loopback address, cannot be listened on, or the simulator was already started.
func (l *LWA) Start(ctx context.Context) error {
	return l.server.start(ctx, "lwa", l.opts.Addr, l)
}

// URL returns the simulator's base URL, such as "http://127.0.0.1:41234", or ""
// before Start.
func (l *LWA) URL() string { return l.server.url() }

// TokenURL returns the URL of the simulated token endpoint, URL() + LWATokenPath,
// or "" before Start.
func (l *LWA) TokenURL() string {
	if u := l.URL(); u != "" {
		return u + LWATokenPath
	}
	return ""
}

// Close stops the server started by Start: it cancels in-flight requests, waits
// for their handlers to return, and closes the listener. Calling Close more than
// once, or without Start, is harmless; it always returns nil.
func (l *LWA) Close() error {
	l.server.close()
	return nil
}

// IssueCode mints a fresh authorization code of the default client for a new,
// unique user, as LWA does when a user links the skill. The code can be
// exchanged once, within CodeLifetime.
func (l *LWA) IssueCode() string {
	return l.IssueCodeFor("amzn1.account.SIM" + lwaRandom(10))
}

// IssueCodeFor mints a fresh authorization code of the default client for user,
// so that tests can later revoke that user's grants with RevokeUser.
func (l *LWA) IssueCodeFor(user string) string {
	return l.IssueCodeForClient(user, l.opts.ClientID)
}

// IssueCodeForClient mints a fresh authorization code for user, issued to the
// client clientID, as LWA does when a user links that client's skill. Only
// that client's credentials can exchange it: another client gets
// invalid_grant, and the code stays usable by its own. A code for a client
// that is never registered (AddClient) cannot be exchanged at all.
func (l *LWA) IssueCodeForClient(user, clientID string) string {
	code := "ANsim" + lwaRandom(15)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now()
	l.sweep(now)
	l.codes[code] = &lwaCode{user: user, client: clientID, expires: now.Add(l.opts.CodeLifetime)}
	return code
}

// ValidAccessToken reports whether token is an access token the simulator issued
// that has not expired and whose grant was not revoked.
func (l *LWA) ValidAccessToken(token string) bool {
	_, ok := l.AccessTokenUser(token)
	return ok
}

// AccessTokenUser returns the user an access token was issued for, and whether
// the token is currently valid (issued here, unexpired, not revoked), whichever
// client it was issued to.
func (l *LWA) AccessTokenUser(token string) (user string, ok bool) {
	g, ok := l.accessGrant(token)
	if !ok {
		return "", false
	}
	return g.user, true
}

// AccessTokenClient returns the client an access token was issued to, and
// whether the token is currently valid (issued here, unexpired, not revoked).
func (l *LWA) AccessTokenClient(token string) (clientID string, ok bool) {
	g, ok := l.accessGrant(token)
	if !ok {
		return "", false
	}
	return g.client, true
}

// accessGrant returns a copy of the grant of a currently valid access token.
func (l *LWA) accessGrant(token string) (lwaGrant, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, found := l.access[token]
	if !found || a.grant.revoked || !l.opts.Now().Before(a.expires) {
		return lwaGrant{}, false
	}
	return *a.grant, true
}

// RevokeUser revokes every grant of user, with every client: their refresh
// tokens and unused codes then answer invalid_grant and their access tokens
// are no longer valid. It returns how many grants and codes were revoked.
func (l *LWA) RevokeUser(user string) int {
	return l.revokeWhere(func(u, _ string) bool { return u == user })
}

// RevokeUserClient revokes user's grants with the client clientID only, as
// when the user disables that client's skill: as RevokeUser, but the user's
// grants with other clients stay valid. It returns how many grants and codes
// were revoked.
func (l *LWA) RevokeUserClient(user, clientID string) int {
	return l.revokeWhere(func(u, c string) bool { return u == user && c == clientID })
}

// revokeWhere revokes the grants and unused codes whose user and client match,
// and returns how many it revoked.
func (l *LWA) revokeWhere(match func(user, client string) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	seen := make(map[*lwaGrant]bool)
	for _, g := range l.refresh {
		if match(g.user, g.client) && !seen[g] {
			seen[g] = true
			n++
		}
	}
	for _, c := range l.codes {
		if match(c.user, c.client) && !c.used && !c.revoked {
			c.revoked = true
			n++
		}
	}
	for _, a := range l.access {
		if match(a.grant.user, a.grant.client) && !seen[a.grant] && !a.grant.revoked {
			seen[a.grant] = true
			n++
		}
	}
	for g := range seen {
		l.revokeLocked(g)
	}
	return n
}

// RevokeRefreshToken revokes the grant that refreshToken belongs to: the token,
// its successors and the grant's access tokens stop working. It reports whether
// refreshToken was a currently valid refresh token.
func (l *LWA) RevokeRefreshToken(refreshToken string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	g, ok := l.refresh[refreshToken]
	if !ok {
		return false
	}
	l.revokeLocked(g)
	return true
}

// revokeLocked marks g revoked and forgets its refresh tokens. l.mu is held.
func (l *LWA) revokeLocked(g *lwaGrant) {
	g.revoked = true
	for rt, rg := range l.refresh {
		if rg == g {
			delete(l.refresh, rt)
		}
	}
}

// FailNext makes the next n requests to the token endpoint fail with HTTP status
// (500 and 503 are typical), before any other check; a retryAfter above zero
// adds a Retry-After header in whole seconds, rounded up. Failures queue up
// behind those injected earlier.
func (l *LWA) FailNext(n, status int, retryAfter time.Duration) {
	l.faults.add(n, status, retryAfter)
}

// SetAccessTokenLifetime changes the lifetime of access tokens issued from now
// on; zero or less restores DefaultLWAAccessTokenLifetime.
func (l *LWA) SetAccessTokenLifetime(d time.Duration) {
	if d <= 0 {
		d = DefaultLWAAccessTokenLifetime
	}
	l.mu.Lock()
	l.opts.AccessTokenLifetime = d
	l.mu.Unlock()
}

// ThrottleNext makes the next n requests answer 429 Too Many Requests with a
// Retry-After header of retryAfter (whole seconds, rounded up).
func (l *LWA) ThrottleNext(n int, retryAfter time.Duration) {
	l.FailNext(n, http.StatusTooManyRequests, retryAfter)
}

// SetDelay makes every answer wait d before it is given; zero answers at once.
// A waiting request ends without an answer when its client goes away.
func (l *LWA) SetDelay(d time.Duration) { l.faults.setDelay(d) }

// SetExpiresIn makes answers from now on carry raw, a JSON value such as `0`,
// `-30`, `86401000` or `"soon"`, as expires_in, whatever lifetime the
// simulator gives the tokens; "" leaves expires_in out of the answer.
// ClearFaults restores the lifetime in seconds.
func (l *LWA) SetExpiresIn(raw string) {
	l.mu.Lock()
	l.expiresIn = &raw
	l.mu.Unlock()
}

// HoldAnswers makes answers wait after the simulator has carried the request
// out (the code used, the refresh token rotated) until release is called, as
// when LWA's answer is slow on its way back; an answer whose client goes away
// meanwhile is lost. release may be called more than once; Held tells how many
// answers wait.
func (l *LWA) HoldAnswers() (release func()) {
	gate := make(chan struct{})
	l.mu.Lock()
	l.hold = gate
	l.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			if l.hold == gate {
				l.hold = nil
			}
			l.mu.Unlock()
			close(gate)
		})
	}
}

// Held returns how many answers HoldAnswers holds back now.
func (l *LWA) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// ClearFaults removes pending injected failures, the delay and SetExpiresIn's
// expires_in.
func (l *LWA) ClearFaults() {
	l.faults.clear()
	l.mu.Lock()
	l.expiresIn = nil
	l.mu.Unlock()
}

// Stats returns a snapshot of the request counters.
func (l *LWA) Stats() LWAStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// ServeHTTP answers POST /auth/o2/token as Login with Amazon does, and 404 on any
// other path.
func (l *LWA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	gate := l.hold
	l.mu.Unlock()
	if gate == nil {
		l.serve(w, r)
		return
	}
	rec := httptest.NewRecorder()
	l.serve(rec, r)
	l.mu.Lock()
	l.held++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.held--
		l.mu.Unlock()
	}()
	select {
	case <-gate:
	case <-r.Context().Done():
		return
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// serve is ServeHTTP without HoldAnswers' gate.
func (l *LWA) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != LWATokenPath {
		http.NotFound(w, r)
		return
	}
	l.mu.Lock()
	l.stats.Requests++
	l.mu.Unlock()
	if !l.faults.wait(r.Context()) {
		return
	}

	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, lwaMaxBody))
	vals, parseErr := url.ParseQuery(string(body))

	l.mu.Lock()
	switch vals.Get("grant_type") {
	case "authorization_code":
		l.stats.Exchanges++
	case "refresh_token":
		l.stats.Refreshes++
	}
	l.mu.Unlock()

	if f, ok := l.faults.next(); ok {
		l.writeFault(w, f)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		lwaInvalidRequest(w, http.StatusMethodNotAllowed, "Malformed request: the method must be POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: the content type must be application/x-www-form-urlencoded")
		return
	}
	if readErr != nil {
		lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: the body cannot be read or is too large")
		return
	}
	if parseErr != nil {
		lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: the body is not a valid form")
		return
	}
	for name, vs := range vals {
		if len(vs) > 1 {
			lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: parameter "+lwaParamName(name)+" is repeated")
			return
		}
	}
	client, ok := l.authenticate(w, r, vals)
	if !ok {
		return
	}
	switch gt := vals.Get("grant_type"); gt {
	case "":
		lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: missing parameter grant_type")
	case "authorization_code":
		l.exchange(w, vals, client)
	case "refresh_token":
		l.refreshGrant(w, vals, client)
	default:
		lwaWriteJSON(w, http.StatusBadRequest, map[string]string{
			"error":             "unsupported_grant_type",
			"error_description": "The authorization grant type is not supported by the authorization server",
		})
	}
}

// authenticate checks the client credentials, from HTTP Basic (form-encoded as
// RFC 6749 §2.3.1 requires) or from the client_id and client_secret fields,
// against the registered clients, and returns the client's id. It writes the
// error answer and returns false when they are missing or wrong.
func (l *LWA) authenticate(w http.ResponseWriter, r *http.Request, vals url.Values) (string, bool) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	formID, formSecret := vals.Get("client_id"), vals.Get("client_secret")
	switch {
	case hasBasic && vals.Has("client_secret"):
		lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: more than one client authentication method")
		return "", false
	case hasBasic:
		// RFC 6749 §2.3.1 form-encodes the credentials before Basic encoding;
		// clients that skip it are accepted too.
		id, secret := lwaUnescape(basicID), lwaUnescape(basicSecret)
		if !l.clientOK(id, secret) {
			id, secret = basicID, basicSecret
		}
		if formID != "" && formID != id { // the form names another client
			l.writeInvalidClient(w, true)
			return "", false
		}
		return l.checkClient(w, id, secret, true)
	case formID != "" || formSecret != "":
		return l.checkClient(w, formID, formSecret, false)
	}
	l.writeInvalidClient(w, false)
	return "", false
}

// checkClient returns id, or writes invalid_client and returns false unless id
// and secret are a registered client's credentials.
func (l *LWA) checkClient(w http.ResponseWriter, id, secret string, basic bool) (string, bool) {
	if l.clientOK(id, secret) {
		return id, true
	}
	l.writeInvalidClient(w, basic)
	return "", false
}

// clientOK reports whether id is a registered client and secret its secret,
// compared in constant time. (Client ids are not secret.)
func (l *LWA) clientOK(id, secret string) bool {
	l.mu.Lock()
	want, ok := l.clients[id]
	l.mu.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(secret), []byte(want)) == 1
}

func (l *LWA) writeInvalidClient(w http.ResponseWriter, basic bool) {
	if basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="api.amazon.com"`)
	}
	lwaWriteJSON(w, http.StatusUnauthorized, map[string]string{
		"error":             "invalid_client",
		"error_description": "Client authentication failed",
	})
}

// exchange answers grant_type=authorization_code for the authenticated client.
// A code issued to another client answers invalid_grant and is left as it
// was.
func (l *LWA) exchange(w http.ResponseWriter, vals url.Values, client string) {
	code := vals.Get("code")
	if code == "" {
		lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: missing parameter code")
		return
	}
	l.mu.Lock()
	now := l.opts.Now()
	c, ok := l.codes[code]
	switch {
	case ok && c.client != client:
		ok = false
	case ok && c.used && l.opts.RevokeOnCodeReuse && c.grant != nil:
		l.revokeLocked(c.grant)
		ok = false
	case ok && (c.used || c.revoked || !now.Before(c.expires)):
		ok = false
	}
	if !ok {
		l.mu.Unlock()
		lwaInvalidGrant(w, "code")
		return
	}
	c.used = true
	c.grant = &lwaGrant{user: c.user, client: c.client}
	resp := l.issueLocked(c.grant, now, true)
	l.stats.ExchangesOK++
	l.mu.Unlock()
	lwaWriteJSON(w, http.StatusOK, resp)
}

// refreshGrant answers grant_type=refresh_token for the authenticated client.
// A refresh token issued to another client answers invalid_grant and stays
// valid for its own.
func (l *LWA) refreshGrant(w http.ResponseWriter, vals url.Values, client string) {
	rt := vals.Get("refresh_token")
	if rt == "" {
		lwaInvalidRequest(w, http.StatusBadRequest, "Malformed request: missing parameter refresh_token")
		return
	}
	l.mu.Lock()
	g, ok := l.refresh[rt]
	if !ok || g.revoked || g.client != client {
		l.mu.Unlock()
		lwaInvalidGrant(w, "refresh_token")
		return
	}
	rotate := !l.opts.NoRotation
	if rotate {
		delete(l.refresh, rt)
	}
	resp := l.issueLocked(g, l.opts.Now(), rotate)
	l.stats.RefreshesOK++
	l.mu.Unlock()
	lwaWriteJSON(w, http.StatusOK, resp)
}

// lwaTokenResponse is the success answer, as samples/lwa-token-response.json.
type lwaTokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	TokenType    string `json:"token_type"`
	ExpiresIn    any    `json:"expires_in,omitempty"`
}

// issueLocked mints an access token for g, and a refresh token when withRefresh.
// l.mu is held.
func (l *LWA) issueLocked(g *lwaGrant, now time.Time, withRefresh bool) lwaTokenResponse {
	l.sweep(now)
	resp := lwaTokenResponse{
		AccessToken: "Atza|IQEB" + lwaRandom(48),
		TokenType:   "bearer",
	}
	l.access[resp.AccessToken] = &lwaAccess{grant: g, expires: now.Add(l.opts.AccessTokenLifetime)}
	if withRefresh {
		resp.RefreshToken = "Atzr|IQEB" + lwaRandom(48)
		l.refresh[resp.RefreshToken] = g
	}
	secs := int64(l.opts.AccessTokenLifetime / time.Second)
	switch {
	case l.expiresIn != nil && *l.expiresIn == "":
		resp.ExpiresIn = nil // left out
	case l.expiresIn != nil:
		resp.ExpiresIn = json.RawMessage(*l.expiresIn)
	case l.opts.ExpiresInAsString:
		resp.ExpiresIn = strconv.FormatInt(secs, 10)
	default:
		resp.ExpiresIn = secs
	}
	return resp
}

// sweep forgets expired codes and access tokens, at most once per code lifetime,
// so a long-running sandbox does not grow without bound. l.mu is held.
func (l *LWA) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.opts.CodeLifetime {
		return
	}
	l.lastSweep = now
	for k, c := range l.codes {
		// Used codes are kept a while longer so that reuse is still recognised.
		if now.After(c.expires.Add(l.opts.AccessTokenLifetime)) {
			delete(l.codes, k)
		}
	}
	for k, a := range l.access {
		if !now.Before(a.expires) {
			delete(l.access, k)
		}
	}
}

func (l *LWA) writeFault(w http.ResponseWriter, f fault) {
	if f.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(f.retryAfterSeconds(), 10))
	}
	code, desc := "server_error", "The authorization server encountered an unexpected condition"
	switch f.status {
	case http.StatusTooManyRequests:
		code, desc = "temporarily_unavailable", "Rate exceeded"
	case http.StatusServiceUnavailable:
		code, desc = "temporarily_unavailable", "The service is temporarily unavailable"
	}
	lwaWriteJSON(w, f.status, map[string]string{"error": code, "error_description": desc})
}

// lwaInvalidRequest writes LWA's invalid_request answer, as
// samples/lwa-error-invalid-request.json.
func lwaInvalidRequest(w http.ResponseWriter, status int, desc string) {
	lwaWriteJSON(w, status, map[string]string{
		"error_index":       lwaErrorIndex(),
		"error_description": desc,
		"error":             "invalid_request",
	})
}

// lwaInvalidGrant writes LWA's invalid_grant answer naming param, as
// samples/lwa-error-invalid-grant.json.
func lwaInvalidGrant(w http.ResponseWriter, param string) {
	lwaWriteJSON(w, http.StatusBadRequest, map[string]string{
		"error":             "invalid_grant",
		"error_description": "The request has an invalid grant parameter : " + param,
	})
}

// lwaWriteJSON writes v with status and the headers of LWA's token answers.
func lwaWriteJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSON(w, status, v)
}

// lwaParamName returns name when it is one of the parameters the endpoint knows,
// so that error descriptions never echo what a client sent.
func lwaParamName(name string) string {
	switch name {
	case "grant_type", "code", "refresh_token", "client_id", "client_secret", "redirect_uri", "scope", "code_verifier":
		return name
	}
	return "(unknown)"
}

// lwaUnescape undoes the form encoding RFC 6749 §2.3.1 applies to Basic
// credentials; a value that does not decode is used as sent.
func lwaUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// lwaRandom returns n random characters of the base32 alphabet.
func lwaRandom(n int) string {
	s := ""
	for len(s) < n {
		s += rand.Text()
	}
	return s[:n]
}

// lwaErrorIndex returns a random UUID-shaped id, as LWA's error_index.
func lwaErrorIndex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
