package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Defaults of a JWKS key source.
const (
	// DefaultJWKSRefreshInterval is how often the JWKS is fetched in the
	// background when Config.JWKSRefreshInterval is zero. It is how long, at
	// most, a key withdrawn from the JWKS keeps verifying tokens (cached ones
	// included) while the JWKS can be fetched: a withdrawal is learnt at the
	// next fetch. Twelve small fetches an hour cost the partner's server
	// nothing.
	DefaultJWKSRefreshInterval = 5 * time.Minute
	// DefaultJWKSUnknownKIDInterval is the least time between two fetches
	// caused by unknown key ids when Config.JWKSUnknownKIDInterval is zero.
	DefaultJWKSUnknownKIDInterval = 30 * time.Second
	// jwksHTTPTimeout bounds every fetch of the JWKS.
	jwksHTTPTimeout = 5 * time.Second
	// jwksLookupTimeout bounds a refetch of the JWKS for an unknown key id,
	// and so what a Verify call spends on one: waiting for the rate limiter
	// and fetching the JWKS again. A wait longer than this fails at once.
	jwksLookupTimeout = 2 * time.Second
)

// signingUses are the uses (the JWK use parameter) of the keys that verify
// signatures: keys meant for encryption never do; keys that do not say are
// taken as signing keys.
var signingUses = []jwkset.USE{jwkset.UseSig, ""}

// jwksSource is a key source backed by a remote JWKS, cached by jwkset and read
// through keyfunc.
type jwksSource struct {
	kf     keyfunc.Keyfunc
	cache  jwkset.Storage // the cached key set
	cancel context.CancelFunc
	// fresh is true while the latest fetch of the JWKS succeeded.
	fresh atomic.Bool
}

// newJWKSSource fetches the JWKS at cfg.JWKSURL once and starts its background
// refresh, which stops when ctx is done or the source is closed. A failed first
// fetch is logged, not returned. onReplace is called after every successful
// fetch, which replaces the whole key set (the verifier forgets the tokens it
// verified with the old set). It returns an error when the URL is not an
// absolute http or https URL or the JWKS client cannot be set up.
func newJWKSSource(ctx context.Context, cfg Config, onReplace func()) (*jwksSource, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("auth: JWKS URL is not an absolute http or https URL")
	}
	refresh := cfg.JWKSRefreshInterval
	if refresh <= 0 {
		refresh = DefaultJWKSRefreshInterval
	}
	unknownKID := cfg.JWKSUnknownKIDInterval
	if unknownKID <= 0 {
		unknownKID = DefaultJWKSUnknownKIDInterval
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}

	bg, cancel := context.WithCancel(ctx)
	s := &jwksSource{cancel: cancel}
	cache := &trackingStorage{Storage: jwkset.NewMemoryStorage(), fresh: &s.fresh, onReplace: onReplace}
	s.cache = cache
	storage, err := jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    &http.Client{Timeout: jwksHTTPTimeout},
		Ctx:                       bg,
		HTTPTimeout:               jwksHTTPTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshInterval:           refresh,
		Storage:                   cache,
		// Every fetch runs on a context of its own (the source's, or a
		// refetch's, detached from the caller that asked for it), so its
		// failure is the key server's: it took too long, or answered wrongly.
		RefreshErrorHandler: func(ctx context.Context, err error) {
			if errors.Is(err, context.Canceled) {
				return // the source is closing; says nothing about the server
			}
			s.fresh.Store(false)
			logger.WarnContext(ctx, "auth: JWKS fetch failed", "url", u.Redacted(), "error", err)
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS storage: %w", err)
	}
	client, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{cfg.JWKSURL: storage},
		RateLimitWaitMax:  jwksLookupTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(unknownKID), 1),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS client: %w", err)
	}
	s.kf, err = keyfunc.New(keyfunc.Options{
		Ctx:     bg,
		Storage: &keyLookup{Storage: client, cache: cache, closed: bg},
		// Applied to tokens that name their key; signingKeys does the same
		// for those that do not.
		UseWhitelist: signingUses,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: JWKS keyfunc: %w", err)
	}
	return s, nil
}

// keyfunc looks up the token's key by its kid, refetching the JWKS for an
// unknown kid as the rate limit allows; a token without a kid gets the cached
// keys that may verify it (signingKeys). When no key is found and the latest
// fetch failed, the error wraps errKeysUnavailable: the key may well exist.
func (s *jwksSource) keyfunc(ctx context.Context) jwt.Keyfunc {
	kf := s.kf.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		var key any
		var err error
		if _, named := t.Header[jwkset.HeaderKID]; named {
			key, err = kf(t)
		} else {
			key, err = s.signingKeys(ctx, t)
		}
		if !s.fresh.Load() {
			if set, ok := key.(jwt.VerificationKeySet); err != nil || (ok && len(set.Keys) == 0) {
				return nil, errors.Join(errKeysUnavailable, err)
			}
		}
		return key, err
	}
}

// signingKeys returns the cached keys that may verify t, a token without a
// kid: those whose use is one of signingUses and whose alg, when they name
// one, is t's. keyfunc would hand such a token every key of the set, keys
// meant for encryption and keys of another algorithm included, where a token
// that names its key gets that key only after both checks.
func (s *jwksSource) signingKeys(ctx context.Context, t *jwt.Token) (jwt.VerificationKeySet, error) {
	all, err := s.cache.KeyReadAll(ctx)
	if err != nil {
		return jwt.VerificationKeySet{}, fmt.Errorf("auth: read the cached JWKS: %w", err)
	}
	alg, _ := t.Header["alg"].(string)
	var set jwt.VerificationKeySet
	for _, jwk := range all {
		m := jwk.Marshal()
		if !slices.Contains(signingUses, m.USE) || (m.ALG != "" && m.ALG.String() != alg) {
			continue
		}
		key := jwk.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public() // a private key published by mistake verifies as its public half
		}
		set.Keys = append(set.Keys, key)
	}
	return set, nil
}

// close stops the background refresh of the JWKS.
func (s *jwksSource) close() { s.cancel() }

// keyLookup is the key store that keyfunc reads: the cached key set, and for
// a key id the cache does not hold, a refetch of the JWKS that runs apart from
// the callers that asked for it. A caller that gives up (it disconnected, or
// its deadline passed) leaves the refetch running: the refetch uses up what
// the rate limit allows for a while, so it must not be wasted, and its end
// must not pass for the key server's failure. Callers that ask meanwhile wait
// for the same refetch instead of asking the rate limiter for another.
type keyLookup struct {
	// Storage is the JWKS client, which refetches the JWKS for an unknown key
	// id as the rate limit allows.
	jwkset.Storage
	cache jwkset.Storage // the cached key set
	// closed ends when the source closes, and any refetch with it.
	closed  context.Context
	refetch singleflight.Group
}

// KeyRead returns the key with keyID from the cache. When the cache does not
// hold it, KeyRead waits for a refetch of the JWKS (starting one when none
// runs) and looks again; the refetch ends within jwksLookupTimeout, whatever
// ctx does. It returns an error wrapping jwkset.ErrKeyNotFound when the key
// is not found, and one wrapping errKeysUnavailable and ctx's error when ctx
// ends first: the key may well exist. Closing the source ends the refetch.
func (l *keyLookup) KeyRead(ctx context.Context, keyID string) (jwkset.JWK, error) {
	if jwk, err := l.cache.KeyRead(ctx, keyID); !errors.Is(err, jwkset.ErrKeyNotFound) {
		return jwk, err
	}
	done := l.refetch.DoChan("", func() (any, error) {
		// The values of the first caller's context (its trace, its log
		// attributes) go with the refetch; its cancellation does not.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksLookupTimeout)
		defer cancel()
		defer context.AfterFunc(l.closed, cancel)()
		// The JWKS client looks keyID up after the refetch; every waiting
		// caller looks its own key id up in the cache below.
		_, err := l.Storage.KeyRead(ctx, keyID)
		return nil, err
	})
	select {
	case <-done:
	case <-ctx.Done():
		return jwkset.JWK{}, fmt.Errorf("auth: waiting for the JWKS: %w", errors.Join(errKeysUnavailable, ctx.Err()))
	}
	return l.cache.KeyRead(ctx, keyID)
}

// trackingStorage is the JWKS cache. It notes each successful fetch, which
// replaces the whole cached set.
type trackingStorage struct {
	jwkset.Storage
	fresh     *atomic.Bool
	onReplace func()
}

// KeyReplaceAll replaces the cached keys and marks the cache fresh.
func (t *trackingStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := t.Storage.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	t.fresh.Store(true)
	if t.onReplace != nil {
		t.onReplace()
	}
	return nil
}
