package sim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// JWKSPath is where an AuthServer publishes its JSON Web Key Set.
const JWKSPath = "/.well-known/jwks.json"

// DefaultAudience is the audience an AuthServer puts in its tokens when its
// options name none.
const DefaultAudience = "reciprocal-broker"

// AuthServerOptions configures an AuthServer. The zero value is usable.
type AuthServerOptions struct {
	// Addr is the address Start listens on. It must be a loopback address;
	// empty means "127.0.0.1:0", a free port.
	Addr string
	// Issuer is the iss claim of every token. When empty it is the server's URL
	// once Start has run, as for a real OpenID provider; an AuthServer used only
	// as an http.Handler should be given one.
	Issuer string
	// Audience is the aud claim of every token; DefaultAudience when empty.
	Audience string
	// Algorithm is the signing algorithm: "RS256" (the default), "PS256" or
	// "ES256". RSA keys have 2048 bits, ECDSA keys use P-256.
	Algorithm string
	// Now returns the current time for iat and exp; time.Now when nil.
	Now func() time.Time
}

// AccessClaims are the claims of an RFC 9068 JWT access token, as the simulated
// authorization server issues them.
type AccessClaims struct {
	jwt.RegisteredClaims
	// ClientID is the OAuth client the token was issued to.
	ClientID string `json:"client_id,omitempty"`
	// Scope is the space-separated list of granted scopes.
	Scope string `json:"scope,omitempty"`
}

// AuthServer simulates the partner's OAuth authorization server: it holds one
// signing key at a time, publishes its public half as a JWKS at JWKSPath, and
// mints RFC 9068 access tokens for users (as Alexa holds them) and for clients
// (client credentials, as the companion app's backend holds them). Its login
// flow signs people in for the public clients of AddPublicClient (the
// broker's operator console): the authorization code grant with PKCE, at
// AuthorizePath, whose page asks who signs in and which of the scopes asked
// for they grant, and TokenPath.
//
// AuthServer is an http.Handler; Start serves it on a loopback port. Its methods
// are safe for concurrent use.
type AuthServer struct {
	addr     string
	audience string
	alg      string
	method   jwt.SigningMethod
	now      func() time.Time

	mu         sync.Mutex
	issuer     string
	key        crypto.Signer
	kid        string
	jwksStatus int
	jwksHits   int
	// clients and codes are the login flow's (authlogin.go).
	clients map[string]publicClient
	codes   map[string]loginCode

	cc     clientCredentials
	server server
}

// NewAuthServer returns an AuthServer with a fresh signing key. It does not
// listen until Start is called; as an http.Handler it can also be mounted
// elsewhere. It returns an error when opts names an unsupported algorithm or no
// key can be generated.
func NewAuthServer(opts AuthServerOptions) (*AuthServer, error) {
	s := &AuthServer{
		addr:     opts.Addr,
		issuer:   opts.Issuer,
		audience: opts.Audience,
		alg:      opts.Algorithm,
		now:      opts.Now,
	}
	if s.addr == "" {
		s.addr = "127.0.0.1:0"
	}
	if s.audience == "" {
		s.audience = DefaultAudience
	}
	if s.alg == "" {
		s.alg = "RS256"
	}
	switch s.alg {
	case "RS256":
		s.method = jwt.SigningMethodRS256
	case "PS256":
		s.method = jwt.SigningMethodPS256
	case "ES256":
		s.method = jwt.SigningMethodES256
	default:
		return nil, fmt.Errorf("sim: auth server: unsupported algorithm %q (want RS256, PS256 or ES256)", s.alg)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.RotateKey(); err != nil {
		return nil, err
	}
	return s, nil
}

// RotateKey replaces the signing key with a new one under a new key id. The old
// key leaves the JWKS at once, so tokens it signed no longer verify once a
// verifier fetches the JWKS again. It returns an error only when no key can be
// generated.
func (s *AuthServer) RotateKey() error {
	var key crypto.Signer
	var err error
	switch s.alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return fmt.Errorf("sim: auth server: generate %s key: %w", s.alg, err)
	}
	kid := "sim-" + randomHex(8)
	s.mu.Lock()
	s.key, s.kid = key, kid
	s.mu.Unlock()
	return nil
}

// KeyID returns the key id (kid) of the current signing key.
func (s *AuthServer) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kid
}

// Algorithm returns the signing algorithm, such as "RS256".
func (s *AuthServer) Algorithm() string { return s.alg }

// Issuer returns the iss claim the server puts in its tokens.
func (s *AuthServer) Issuer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuer
}

// Audience returns the aud claim the server puts in its tokens.
func (s *AuthServer) Audience() string { return s.audience }

// PublicKey returns the public half of the current signing key.
func (s *AuthServer) PublicKey() crypto.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.Public()
}

// Claims returns the claims of an access token for sub and clientID, with the
// given scopes, issued now and expiring after ttl. Tests alter them and sign them
// with Sign to make tokens that are wrong in one way.
func (s *AuthServer) Claims(sub, clientID string, scopes []string, ttl time.Duration) AccessClaims {
	now := s.now()
	return AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.Issuer(),
			Subject:   sub,
			Audience:  jwt.ClaimStrings{s.audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        randomHex(16),
		},
		ClientID: clientID,
		Scope:    strings.Join(scopes, " "),
	}
}

// Sign signs claims with the current key, with the key's kid and the RFC 9068
// type "at+jwt" in the header. It returns an error only when signing fails.
func (s *AuthServer) Sign(claims jwt.Claims) (string, error) {
	s.mu.Lock()
	key, kid := s.key, s.kid
	s.mu.Unlock()
	t := jwt.NewWithClaims(s.method, claims)
	t.Header["kid"] = kid
	t.Header["typ"] = "at+jwt"
	signed, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("sim: auth server: sign token: %w", err)
	}
	return signed, nil
}

// UserToken returns an access token for the partner user sub, issued to the
// OAuth client clientID (the client id the partner gave Alexa) and valid for ttl:
// the token Alexa presents to the broker's reciprocal endpoint. It panics if
// signing fails, which a generated key does not.
func (s *AuthServer) UserToken(sub, clientID string, ttl time.Duration) string {
	return s.mustSign(s.Claims(sub, clientID, nil, ttl))
}

// ClientToken returns a client-credentials access token for clientID with the
// given scopes, valid for ttl: sub is the client id itself, as RFC 9068 asks for
// tokens that no user granted. It panics if signing fails, which a generated key
// does not.
func (s *AuthServer) ClientToken(clientID string, scopes []string, ttl time.Duration) string {
	return s.mustSign(s.Claims(clientID, clientID, scopes, ttl))
}

func (s *AuthServer) mustSign(claims AccessClaims) string {
	signed, err := s.Sign(claims)
	if err != nil {
		panic(err)
	}
	return signed
}

// FailJWKS makes the JWKS endpoint answer with the HTTP status code status and no
// key set, as an unreachable or failing authorization server would. FailJWKS(0)
// restores normal answers.
func (s *AuthServer) FailJWKS(status int) {
	s.mu.Lock()
	s.jwksStatus = status
	s.mu.Unlock()
}

// JWKSRequests returns how many requests the JWKS endpoint has answered, failed
// ones included, so tests can prove that keys are cached and refetched sparingly.
func (s *AuthServer) JWKSRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksHits
}

// JWKS returns the JSON Web Key Set document of the current public key.
func (s *AuthServer) JWKS() ([]byte, error) {
	s.mu.Lock()
	key, kid := s.key, s.kid
	s.mu.Unlock()
	jwk, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{
			ALG: jwkset.ALG(s.alg),
			KID: kid,
			USE: jwkset.UseSig,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("sim: auth server: make JWK: %w", err)
	}
	doc, err := json.Marshal(jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{jwk.Marshal()}})
	if err != nil {
		return nil, fmt.Errorf("sim: auth server: marshal JWKS: %w", err)
	}
	return doc, nil
}

// ServeHTTP answers GET requests for the JWKS at JWKSPath and for the discovery
// documents at /.well-known/openid-configuration and
// /.well-known/oauth-authorization-server (RFC 8414), which name the issuer,
// the JWKS URL and the endpoints of the login flow and of the
// client-credentials grant; and the login flow at AuthorizePath (GET shows the
// login page, POST is its form) and TokenPath (POST: an authorization code of
// the login flow, or the client-credentials grant of a client RegisterClient
// made).
func (s *AuthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case AuthorizePath:
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.serveAuthorize(w, r)
		return
	case TokenPath:
		s.serveToken(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case JWKSPath:
		s.serveJWKS(w)
	case "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server":
		s.serveDiscovery(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *AuthServer) serveJWKS(w http.ResponseWriter) {
	s.mu.Lock()
	s.jwksHits++
	status := s.jwksStatus
	s.mu.Unlock()
	if status != 0 && status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	doc, err := s.JWKS()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(doc)
}

func (s *AuthServer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	base := s.URL()
	if base == "" {
		base = "http://" + r.Host
	}
	issuer := s.Issuer()
	if issuer == "" {
		issuer = base
	}
	doc, err := json.Marshal(map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              base + JWKSPath,
		"authorization_endpoint":                base + AuthorizePath,
		"token_endpoint":                        base + TokenPath,
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "client_credentials"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_basic", "client_secret_post"},
		"id_token_signing_alg_values_supported": []string{s.alg},
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

// Start listens on the configured loopback address and serves the JWKS and
// discovery documents in the background until Close is called or ctx is done.
// When the options named no issuer, the server's URL becomes the issuer. It
// returns an error when the address is not a loopback address, cannot be
// listened on, or the server was already started.
func (s *AuthServer) Start(ctx context.Context) error {
	if err := s.server.start(ctx, "auth server", s.addr, s); err != nil {
		return err
	}
	s.mu.Lock()
	if s.issuer == "" {
		s.issuer = s.server.url()
	}
	s.mu.Unlock()
	return nil
}

// URL returns the server's base URL, such as "http://127.0.0.1:41234", or ""
// before Start.
func (s *AuthServer) URL() string { return s.server.url() }

// JWKSURL returns the URL of the server's JWKS, URL() + JWKSPath, or "" before
// Start.
func (s *AuthServer) JWKSURL() string {
	if u := s.URL(); u != "" {
		return u + JWKSPath
	}
	return ""
}

// Close stops the server started by Start: it cancels in-flight requests, waits
// for them to end, and closes the listener. Calling Close more than once, or
// without Start, is harmless.
func (s *AuthServer) Close() error {
	s.server.close()
	return nil
}

// randomHex returns n random bytes in hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails.
	return hex.EncodeToString(b)
}
