package auth

import (
	"context"
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
	// Audience is the audience the aud claim must contain. It is required,
	// except with a profile whose tokens carry no aud (Profile.NoAudience):
	// there it is checked only when set.
	Audience string

	// Profile names the claim profile that says which claims name the client
	// and carry the scopes (see Profile and ProfileNames); DefaultProfile,
	// RFC 9068's client_id and scope, when empty.
	Profile string
	// ClientClaim, when set, replaces the profile's client claims.
	ClientClaim string
	// ScopeClaims, when not empty, replace the profile's scope claims; the
	// scopes of all of them are joined.
	ScopeClaims []string
	// Clients, when not empty, are the only clients whose tokens are
	// accepted. A profile whose tokens carry no aud requires it.
	Clients []string

	// JWKSURL, PublicKeyFile and HS256Secret are the three ways to check
	// signatures; exactly one must be set.
	//
	// JWKSURL is the authorization server's JSON Web Key Set. Its keys are
	// cached, refetched every JWKSRefreshInterval, and refetched at once, at most
	// once per JWKSUnknownKIDInterval, when a token names a key id the cache does
	// not hold; such a refetch costs a Verify call at most two seconds, and is
	// skipped at once when the rate limit would make it wait longer. A refetch
	// runs apart from the call that started it: a caller that gives up does
	// not end it, and calls meeting unknown key ids meanwhile wait for it
	// rather than start another. RS256, PS256 and ES256 tokens are accepted.
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
	// DefaultJWKSRefreshInterval when zero. It bounds how long a key withdrawn
	// from the JWKS keeps verifying tokens, the verified-token cache included,
	// for as long as the JWKS can be fetched: every successful fetch replaces
	// the whole key set and empties the cache.
	JWKSRefreshInterval time.Duration
	// JWKSUnknownKIDInterval is the least time between two fetches of the JWKS
	// caused by unknown key ids; DefaultJWKSUnknownKIDInterval when zero. It
	// bounds the load that tokens with made-up key ids can put on the
	// authorization server.
	JWKSUnknownKIDInterval time.Duration
	// Logger receives failures to fetch the JWKS and one line per refused
	// token, saying why (the claim at fault, never the token); slog.Default()
	// when nil.
	Logger *slog.Logger
	// CacheTTL is how long a verified token is remembered (never past its exp,
	// nor past the next fetch of the JWKS): 0 means DefaultCacheTTL, a negative
	// value turns the cache off.
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
	profile Profile
	clients []string
	logger  *slog.Logger
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
	profile, err := cfg.profile()
	if err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Clients, "") {
		return nil, errors.New("auth: the list of accepted clients holds an empty client")
	}
	switch {
	case profile.NoAudience && len(cfg.Clients) == 0:
		return nil, fmt.Errorf("auth: profile %s: its tokens carry no aud, so a list of accepted clients is required", profile.Name)
	case !profile.NoAudience && cfg.Audience == "":
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

	v := &Verifier{now: cfg.Now, profile: profile, clients: slices.Clone(cfg.Clients), logger: cfg.Logger}
	if v.now == nil {
		v.now = time.Now
	}
	if v.logger == nil {
		v.logger = slog.Default()
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
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
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

// Verify checks rawToken and returns the Principal it carries, read by the
// verifier's profile. It returns an EUNAUTHENTICATED error when the token is
// empty, too large, malformed, signed with an algorithm not on the allow-list
// or a key the verifier does not hold, wrongly signed, expired, not yet valid,
// from another issuer, for another audience, without a subject, with a crit
// header (the broker understands no extension), with two claims whose names
// differ only in case, with a registered claim of the wrong JSON type (exp,
// nbf or iat not a number), or when its claims do not fit the profile (no
// client claim, a client not accepted, a wrong token_use); and an EUNAVAILABLE
// error when the JWKS could not be fetched, so the signing key cannot be
// found, or when ctx ended while the JWKS was being fetched again for the
// token's key id. The error's message is short, fit for the caller, and never contains
// the token; a refusal is logged with the claim at fault.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (Principal, error) {
	p, err := v.verify(ctx, rawToken)
	// AsType rather than As: As's target escapes, an allocation per call.
	if r, ok := errors.AsType[*refusal](err); ok {
		attrs := []slog.Attr{slog.String("reason", r.reason), slog.String("profile", v.profile.Name)}
		if r.claim != "" {
			attrs = append(attrs, slog.String("claim", r.claim))
		}
		if r.client != "" {
			attrs = append(attrs, slog.String("client", r.client))
		}
		v.logger.LogAttrs(ctx, slog.LevelInfo, "auth: bearer token refused", attrs...)
		return Principal{}, unauthenticated(r.reason)
	}
	return p, err
}

// verify is Verify, with its refusals as *refusal.
func (v *Verifier) verify(ctx context.Context, rawToken string) (Principal, error) {
	switch {
	case rawToken == "":
		return Principal{}, &refusal{reason: "no token"}
	case len(rawToken) > MaxTokenSize:
		return Principal{}, &refusal{reason: "token is too large"}
	}
	now := v.now()
	var gen uint64
	if v.cache != nil {
		if p, ok := v.cache.get(rawToken, now); ok {
			return p, nil
		}
		gen = v.cache.generation()
	}
	var c claims
	tok, err := v.parser.ParseWithClaims(rawToken, &c, v.keyfunc(ctx))
	if err != nil {
		return Principal{}, v.classify(tok, &c, err)
	}
	if c.sub == "" {
		return Principal{}, &refusal{reason: "token has no subject", claim: "sub"}
	}
	p, r := v.profile.principal(&c, v.clients)
	if r != nil {
		return Principal{}, r
	}
	if v.cache != nil {
		v.cache.put(strings.Clone(rawToken), p, c.exp.Time, now, gen)
	}
	return p, nil
}

// keyfunc returns the key source's jwt.Keyfunc for one verification, behind a
// check of the header: a token whose crit header names extensions must be
// refused by a recipient that does not understand them (RFC 7515 §4.1.11), and
// the broker understands none. The check runs before any key is looked up.
func (v *Verifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	kf := v.keys.keyfunc(ctx)
	return func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, &refusal{reason: "token header names critical extensions the broker does not understand (crit)"}
		}
		return kf(t)
	}
}

// classify turns an error of jwt.Parser about tok, whose claims c were decoded,
// into an application error whose message is a fixed phrase: the parser's own
// messages may quote parts of the token.
func (v *Verifier) classify(tok *jwt.Token, c *claims, err error) error {
	if errors.Is(err, errKeysUnavailable) {
		return tokens.Errorf(tokens.EUNAVAILABLE, "the authorization server's signing keys cannot be fetched")
	}
	var r *refusal
	if errors.As(err, &r) {
		return r
	}
	if errors.Is(err, jwt.ErrTokenMalformed) || tok == nil {
		return &refusal{reason: "token is malformed"}
	}
	if alg, _ := tok.Header["alg"].(string); !slices.Contains(v.methods, alg) {
		return &refusal{reason: "token signing algorithm is not allowed"}
	}
	if errors.Is(err, jwt.ErrTokenInvalidClaims) && c.raw == nil {
		// The payload was JSON null, which never reaches claims.UnmarshalJSON.
		return &refusal{reason: "token payload is not a JSON object"}
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		switch {
		case c.exp == nil:
			return &refusal{reason: "token has no expiry", claim: "exp"}
		case c.iss == "":
			return &refusal{reason: "token has no issuer", claim: "iss"}
		case len(c.aud) == 0:
			return &refusal{reason: "token has no audience", claim: "aud"}
		}
	}
	for _, k := range []struct {
		err           error
		reason, claim string
	}{
		{jwt.ErrTokenUnverifiable, "token signing key is not known", ""},
		{jwt.ErrTokenSignatureInvalid, "token signature is invalid", ""},
		{jwt.ErrTokenExpired, "token is expired", "exp"},
		{jwt.ErrTokenNotValidYet, "token is not valid yet", "nbf"},
		{jwt.ErrTokenInvalidIssuer, "token issuer is not accepted", "iss"},
		{jwt.ErrTokenInvalidAudience, "token audience is not accepted", "aud"},
		{jwt.ErrTokenRequiredClaimMissing, "token lacks a required claim", ""},
	} {
		if errors.Is(err, k.err) {
			return &refusal{reason: k.reason, claim: k.claim}
		}
	}
	return &refusal{reason: "token is invalid"}
}

// refusal is why a token is not accepted: reason, a fixed phrase fit for the
// caller, and, for the log, the claim at fault and the client, when known.
// Neither ever holds a part of the token beyond a claim's name.
type refusal struct {
	reason, claim, client string
}

// Error returns the reason.
func (r *refusal) Error() string { return r.reason }

// unauthenticated returns an EUNAUTHENTICATED error with reason.
func unauthenticated(reason string) error {
	return tokens.Errorf(tokens.EUNAUTHENTICATED, "%s", reason)
}

// profile returns the profile cfg names, with its overrides applied, or an
// error naming what is wrong.
func (cfg Config) profile() (Profile, error) {
	p, ok := LookupProfile(cfg.Profile)
	if !ok {
		return Profile{}, fmt.Errorf("auth: unknown profile %q (want one of %s)", cfg.Profile, strings.Join(ProfileNames(), ", "))
	}
	if cfg.ClientClaim != "" {
		if err := CheckClaimName(cfg.ClientClaim); err != nil {
			return Profile{}, fmt.Errorf("auth: client claim: %w", err)
		}
		p.ClientClaims = []string{cfg.ClientClaim}
	}
	if len(cfg.ScopeClaims) > 0 {
		for _, name := range cfg.ScopeClaims {
			if err := CheckClaimName(name); err != nil {
				return Profile{}, fmt.Errorf("auth: scope claims: %w", err)
			}
		}
		p.ScopeClaims = slices.Clone(cfg.ScopeClaims)
	}
	return p, nil
}
