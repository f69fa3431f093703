package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Limits and defaults of a Verifier.
const (
	// DefaultLeeway is the clock skew allowed on exp and nbf when Config.Leeway
	// is zero.
	DefaultLeeway = 60 * time.Second
	// MaxLeeway is the largest clock skew a Verifier accepts to allow.
	MaxLeeway = 60 * time.Second
	// MaxTokenSize is the length in bytes of the longest token Verify parses.
	MaxTokenSize = 16 << 10
	// MinHS256SecretSize is the length in bytes of the shortest HS256 secret:
	// RFC 7518 §3.2 asks for a key at least as long as the hash output.
	MinHS256SecretSize = 32
)

// Config says which tokens a Verifier accepts.
type Config struct {
	// Issuer is the required iss claim.
	Issuer string
	// Audience is the audience the aud claim must contain.
	Audience string

	// JWKSURL, PublicKeyFile and HS256Secret are the three ways to check
	// signatures; exactly one must be set.
	//
	// JWKSURL is the authorization server's JSON Web Key Set. Its keys are
	// cached, refetched every JWKSRefreshInterval, and refetched at once, at most
	// once per JWKSUnknownKIDInterval, when a token names a key id the cache does
	// not hold; such a refetch costs a Verify call at most two seconds, and is
	// skipped at once when the rate limit would make it wait longer. RS256,
	// PS256 and ES256 tokens are accepted.
	JWKSURL string
	// PublicKeyFile is a PEM file holding one public key (PKIX "PUBLIC KEY" or
	// PKCS #1 "RSA PUBLIC KEY") or a certificate. An RSA key (2048 bits or
	// more) accepts RS256 and PS256 tokens, an ECDSA P-256 key ES256 tokens, an
	// Ed25519 key EdDSA tokens.
	PublicKeyFile string
	// HS256Secret is a shared secret of at least MinHS256SecretSize bytes, for
	// development: only HS256 tokens are then accepted.
	HS256Secret tokens.Secret

	// Leeway is the clock skew allowed on exp and nbf: DefaultLeeway when zero,
	// none when negative, at most MaxLeeway.
	Leeway time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time

	// JWKSRefreshInterval is how often the JWKS is fetched in the background;
	// DefaultJWKSRefreshInterval when zero.
	JWKSRefreshInterval time.Duration
	// JWKSUnknownKIDInterval is the least time between two fetches of the JWKS
	// caused by unknown key ids; DefaultJWKSUnknownKIDInterval when zero. It
	// bounds the load that tokens with made-up key ids can put on the
	// authorization server.
	JWKSUnknownKIDInterval time.Duration
	// Logger receives failures to fetch the JWKS; slog.Default() when nil.
	Logger *slog.Logger
	// CacheTTL is how long a verified token is remembered (never past its exp):
	// 0 means DefaultCacheTTL, a negative value turns the cache off.
	CacheTTL time.Duration
}

// Verifier checks bearer JWTs and returns the Principal they carry: it is the
// broker's Authenticator. It is safe for concurrent use.
type Verifier struct {
	parser  *jwt.Parser
	methods []string
	keys    keySource
	now     func() time.Time
	cache   *cache // nil when caching is off
}

// keySource finds the key that verifies a token.
type keySource interface {
	// keyfunc returns the jwt.Keyfunc for one verification. Its error wraps
	// errKeysUnavailable when the keys cannot be fetched.
	keyfunc(ctx context.Context) jwt.Keyfunc
	// close releases what the source holds.
	close()
}

// errKeysUnavailable marks a failure to fetch the signing keys.
var errKeysUnavailable = errors.New("signing keys unavailable")

// staticKey is a key source of one key: a PEM public key or an HS256 secret.
type staticKey struct{ key any }

// keyfunc returns a jwt.Keyfunc that always answers the one key.
func (s staticKey) keyfunc(context.Context) jwt.Keyfunc {
	return func(*jwt.Token) (any, error) { return s.key, nil }
}

// close does nothing: a static key holds nothing to release.
func (staticKey) close() {}

// NewVerifier returns a Verifier for cfg. With a JWKS URL it fetches the key set
// once before returning; that fetch may fail, and the verifier then answers
// EUNAVAILABLE until a later fetch succeeds. The background refresh stops when
// ctx is done or Close is called. NewVerifier returns an error naming the
// problem when cfg is incomplete or inconsistent, or the public key file cannot
// be read or holds no usable key.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("auth: no issuer configured")
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: no audience configured")
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	case leeway > MaxLeeway:
		return nil, fmt.Errorf("auth: leeway %v is more than %v", leeway, MaxLeeway)
	}

	sources := 0
	for _, set := range []bool{cfg.JWKSURL != "", cfg.PublicKeyFile != "", cfg.HS256Secret != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return nil, fmt.Errorf("auth: %d key sources configured, want exactly one of JWKS URL, public key file or HS256 secret", sources)
	}

	v := &Verifier{now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	switch ttl := cfg.CacheTTL; {
	case ttl == 0:
		v.cache = newCache(DefaultCacheTTL)
	case ttl > 0:
		v.cache = newCache(ttl)
	}
	switch {
	case cfg.JWKSURL != "":
		src, err := newJWKSSource(ctx, cfg, v.cache.clear)
		if err != nil {
			return nil, err
		}
		v.keys, v.methods = src, []string{"RS256", "PS256", "ES256"}
	case cfg.PublicKeyFile != "":
		key, methods, err := loadPublicKey(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.keys, v.methods = staticKey{key}, methods
	default:
		secret := []byte(cfg.HS256Secret.Reveal())
		if len(secret) < MinHS256SecretSize {
			return nil, fmt.Errorf("auth: HS256 secret has %d bytes, want at least %d", len(secret), MinHS256SecretSize)
		}
		v.keys, v.methods = staticKey{secret}, []string{"HS256"}
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Methods returns the signing algorithms the verifier accepts, such as
// ["RS256", "PS256", "ES256"].
func (v *Verifier) Methods() []string { return slices.Clone(v.methods) }

// Close stops the background refresh of the JWKS. It always returns nil.
func (v *Verifier) Close() error {
	v.keys.close()
	return nil
}

// Verify checks rawToken and returns the Principal it carries. It returns an
// EUNAUTHENTICATED error when the token is empty, too large, malformed, signed
// with an algorithm not on the allow-list or a key the verifier does not hold,
// wrongly signed, expired, not yet valid, from another issuer, for another
// audience, or without a subject; and an EUNAVAILABLE error when the JWKS could
// not be fetched, so the signing key cannot be found. The error's message is
// short, fit for the caller, and never contains the token.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (Principal, error) {
	switch {
	case rawToken == "":
		return Principal{}, unauthenticated("no token")
	case len(rawToken) > MaxTokenSize:
		return Principal{}, unauthenticated("token is too large")
	}
	now := v.now()
	if v.cache != nil {
		if p, ok := v.cache.get(rawToken, now); ok {
			return p, nil
		}
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(rawToken, &c, v.keys.keyfunc(ctx))
	if err != nil {
		return Principal{}, v.classify(tok, &c, err)
	}
	if c.Subject == "" {
		return Principal{}, unauthenticated("token has no subject")
	}
	p := Principal{Subject: c.Subject, ClientID: c.ClientID, Scopes: c.Scope}
	if v.cache != nil {
		v.cache.put(strings.Clone(rawToken), p, c.ExpiresAt.Time, now)
	}
	return p, nil
}

// classify turns an error of jwt.Parser about tok, whose claims c were decoded,
// into an application error whose message is a fixed phrase: the parser's own
// messages may quote parts of the token.
func (v *Verifier) classify(tok *jwt.Token, c *claims, err error) error {
	if errors.Is(err, errKeysUnavailable) {
		return tokens.Errorf(tokens.EUNAVAILABLE, "the authorization server's signing keys cannot be fetched")
	}
	if errors.Is(err, jwt.ErrTokenMalformed) || tok == nil {
		return unauthenticated("token is malformed")
	}
	if alg, _ := tok.Header["alg"].(string); !slices.Contains(v.methods, alg) {
		return unauthenticated("token signing algorithm is not allowed")
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		switch {
		case c.ExpiresAt == nil:
			return unauthenticated("token has no expiry")
		case c.Issuer == "":
			return unauthenticated("token has no issuer")
		case len(c.Audience) == 0:
			return unauthenticated("token has no audience")
		}
	}
	for _, k := range []struct {
		err    error
		reason string
	}{
		{jwt.ErrTokenUnverifiable, "token signing key is not known"},
		{jwt.ErrTokenSignatureInvalid, "token signature is invalid"},
		{jwt.ErrTokenExpired, "token is expired"},
		{jwt.ErrTokenNotValidYet, "token is not valid yet"},
		{jwt.ErrTokenInvalidIssuer, "token issuer is not accepted"},
		{jwt.ErrTokenInvalidAudience, "token audience is not accepted"},
		{jwt.ErrTokenRequiredClaimMissing, "token lacks a required claim"},
	} {
		if errors.Is(err, k.err) {
			return unauthenticated(k.reason)
		}
	}
	return unauthenticated("token is invalid")
}

// unauthenticated returns an EUNAUTHENTICATED error with reason.
func unauthenticated(reason string) error {
	return tokens.Errorf(tokens.EUNAUTHENTICATED, "%s", reason)
}

// claims are the claims of an RFC 9068 access token that the broker reads.
type claims struct {
	jwt.RegisteredClaims
	ClientID string     `json:"client_id"`
	Scope    scopeClaim `json:"scope"`
}

// scopeClaim is the scope claim: a space-separated string as RFC 9068 defines
// it, or, as some servers send it, a JSON array of strings.
type scopeClaim []string

// UnmarshalJSON reads a scope claim in either form.
func (s *scopeClaim) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = strings.Fields(str)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("scope claim is neither a string nor a list of strings")
	}
	*s = list
	return nil
}
