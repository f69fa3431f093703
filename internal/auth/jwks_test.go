package auth_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// quiet is a logger that drops everything, for tests that make JWKS fetches
// fail on purpose.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startAuthServer runs a simulated authorization server until the test ends.
func startAuthServer(tb testing.TB, alg string) *sim.AuthServer {
	tb.Helper()
	s, err := sim.NewAuthServer(sim.AuthServerOptions{Issuer: testIssuer, Audience: testAudience, Algorithm: alg})
	if err != nil {
		tb.Fatalf("NewAuthServer: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestVerifier_Verify_JWKS(t *testing.T) {
	for _, alg := range []string{"RS256", "PS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			s := startAuthServer(t, alg)
			v := newVerifier(t, auth.Config{JWKSURL: s.JWKSURL()})

			t.Run("UserToken", func(t *testing.T) {
				p, err := v.Verify(context.Background(), s.UserToken("user-1", "alexa-client", time.Hour))
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.Subject != "user-1" || p.ClientID != "alexa-client" || len(p.Scopes) != 0 {
					t.Errorf("principal = %+v, want user-1 of alexa-client without scopes", p)
				}
			})
			t.Run("ClientToken", func(t *testing.T) {
				p, err := v.Verify(context.Background(), s.ClientToken("companion", []string{"broker:tokens", "broker:admin"}, time.Hour))
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got, want := p.Subject, "companion"; got != want {
					t.Errorf("Subject = %q, want %q", got, want)
				}
				if got, want := p.Scopes, []string{"broker:tokens", "broker:admin"}; !slices.Equal(got, want) {
					t.Errorf("Scopes = %q, want %q", got, want)
				}
				if !p.HasScope("broker:admin") || p.HasScope("broker:profiles") {
					t.Errorf("HasScope wrong for %q", p.Scopes)
				}
			})
			t.Run("Expired", func(t *testing.T) {
				raw := s.UserToken("user-1", "alexa-client", -2*time.Minute)
				_, err := v.Verify(context.Background(), raw)
				checkError(t, err, tokens.EUNAUTHENTICATED, "expired", raw)
			})
			t.Run("WrongAudience", func(t *testing.T) {
				c := s.Claims("user-1", "alexa-client", nil, time.Hour)
				c.Audience = jwt.ClaimStrings{"https://other.example"}
				raw, err := s.Sign(c)
				if err != nil {
					t.Fatal(err)
				}
				_, err = v.Verify(context.Background(), raw)
				checkError(t, err, tokens.EUNAUTHENTICATED, "audience", raw)
			})
			t.Run("AlgorithmConfusion", func(t *testing.T) {
				// HS256 with the published public key as the secret, naming its kid.
				secret := pkixPEM(t, s.PublicKey())
				raw := sign(t, jwt.SigningMethodHS256, secret, claimsAt(time.Now()), map[string]any{"kid": s.KeyID()})
				_, err := v.Verify(context.Background(), raw)
				checkError(t, err, tokens.EUNAUTHENTICATED, "algorithm is not allowed", raw)
			})
			t.Run("AlgNone", func(t *testing.T) {
				raw := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsAt(time.Now()), map[string]any{"kid": s.KeyID()})
				_, err := v.Verify(context.Background(), raw)
				checkError(t, err, tokens.EUNAUTHENTICATED, "algorithm is not allowed", raw)
			})
			t.Run("ForeignKeySameKID", func(t *testing.T) {
				k := keys()
				var raw string
				if alg == "ES256" {
					raw = sign(t, jwt.SigningMethodES256, k.ec, claimsAt(time.Now()), map[string]any{"kid": s.KeyID()})
				} else {
					raw = sign(t, jwt.GetSigningMethod(alg), k.rsaOther, claimsAt(time.Now()), map[string]any{"kid": s.KeyID()})
				}
				_, err := v.Verify(context.Background(), raw)
				checkError(t, err, tokens.EUNAUTHENTICATED, "signature is invalid", raw)
			})
		})
	}
}

func TestVerifier_Verify_JWKSRotation(t *testing.T) {
	s := startAuthServer(t, "RS256")
	v := newVerifier(t, auth.Config{JWKSURL: s.JWKSURL()})
	ctx := context.Background()

	old := s.UserToken("user-1", "alexa-client", time.Hour)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("Verify before rotation: %v", err)
	}
	if got, want := s.JWKSRequests(), 1; got != want {
		t.Fatalf("JWKS requests after start = %d, want %d (the cache is used)", got, want)
	}

	if err := s.RotateKey(); err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	t.Run("NewKIDRefetches", func(t *testing.T) {
		if _, err := v.Verify(ctx, s.UserToken("user-2", "alexa-client", time.Hour)); err != nil {
			t.Fatalf("Verify after rotation: %v", err)
		}
		if got, want := s.JWKSRequests(), 2; got != want {
			t.Errorf("JWKS requests = %d, want %d", got, want)
		}
	})
	t.Run("OldKIDDropped", func(t *testing.T) {
		_, err := v.Verify(ctx, old)
		checkError(t, err, tokens.EUNAUTHENTICATED, "signing key is not known", old)
	})
	t.Run("UnknownKIDRateLimited", func(t *testing.T) {
		before := s.JWKSRequests()
		k := keys()
		for _, kid := range []string{"made-up-1", "made-up-2", "made-up-3", "made-up-4"} {
			raw := sign(t, jwt.SigningMethodRS256, k.rsaOther, claimsAt(time.Now()), map[string]any{"kid": kid})
			_, err := v.Verify(ctx, raw)
			checkError(t, err, tokens.EUNAUTHENTICATED, "signing key is not known", raw)
		}
		if got := s.JWKSRequests() - before; got > 1 {
			t.Errorf("four made-up kids caused %d JWKS fetches, want at most 1", got)
		}
	})
}

func TestVerifier_Verify_JWKSUnavailable(t *testing.T) {
	t.Run("FirstFetchFails", func(t *testing.T) {
		s := startAuthServer(t, "ES256")
		s.FailJWKS(http.StatusServiceUnavailable)
		v := newVerifier(t, auth.Config{JWKSURL: s.JWKSURL(), JWKSUnknownKIDInterval: time.Millisecond, Logger: quiet})
		raw := s.UserToken("user-1", "alexa-client", time.Hour)

		_, err := v.Verify(context.Background(), raw)
		checkError(t, err, tokens.EUNAVAILABLE, "cannot be fetched", raw)

		s.FailJWKS(0)
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatalf("Verify once the JWKS answers: %v", err)
		}
	})
	t.Run("ServerDown", func(t *testing.T) {
		s := startAuthServer(t, "RS256")
		url := s.JWKSURL()
		raw := s.UserToken("user-1", "alexa-client", time.Hour)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		v := newVerifier(t, auth.Config{JWKSURL: url, Logger: quiet})
		_, err := v.Verify(context.Background(), raw)
		checkError(t, err, tokens.EUNAVAILABLE, "cannot be fetched", raw)
	})
	t.Run("NoKIDWhileUnavailable", func(t *testing.T) {
		s := startAuthServer(t, "RS256")
		s.FailJWKS(http.StatusInternalServerError)
		v := newVerifier(t, auth.Config{JWKSURL: s.JWKSURL(), Logger: quiet})
		raw := sign(t, jwt.SigningMethodRS256, keys().rsa, claimsAt(time.Now()), nil)
		_, err := v.Verify(context.Background(), raw)
		checkError(t, err, tokens.EUNAVAILABLE, "cannot be fetched", raw)
	})
	t.Run("RefreshFailsKnownKeyStillWorks", func(t *testing.T) {
		s := startAuthServer(t, "RS256")
		v := newVerifier(t, auth.Config{JWKSURL: s.JWKSURL(), JWKSRefreshInterval: 5 * time.Millisecond, Logger: quiet})
		s.FailJWKS(http.StatusBadGateway)
		waitFor(t, func() bool { return s.JWKSRequests() >= 3 }, "background refreshes")
		if _, err := v.Verify(context.Background(), s.UserToken("user-1", "alexa-client", time.Hour)); err != nil {
			t.Errorf("Verify with a cached key while the JWKS fails: %v", err)
		}
	})
}

func TestVerifier_JWKSBackgroundRefresh(t *testing.T) {
	s := startAuthServer(t, "RS256")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := auth.NewVerifier(ctx, auth.Config{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: s.JWKSURL(),
		JWKSRefreshInterval: 5 * time.Millisecond,
		// No refetch for unknown kids in this test: only the background refresh
		// can learn the new key.
		JWKSUnknownKIDInterval: time.Hour,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	// Use up the one refetch for unknown kids that the limiter allows at once.
	raw := sign(t, jwt.SigningMethodRS256, keys().rsaOther, claimsAt(time.Now()), map[string]any{"kid": "nobody"})
	if _, err := v.Verify(ctx, raw); err == nil {
		t.Fatal("Verify of a token with an unknown kid: got nil error")
	}

	if err := s.RotateKey(); err != nil {
		t.Fatal(err)
	}
	fresh := s.UserToken("user-1", "alexa-client", time.Hour)
	waitFor(t, func() bool {
		_, err := v.Verify(ctx, fresh)
		return err == nil
	}, "the background refresh to learn the new key")
}

// waitFor polls cond until it holds, failing the test after five seconds.
func waitFor(tb testing.TB, cond func() bool, what string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(5 * time.Millisecond)
	}
}

// TestVerifier_WithdrawnKey: a key withdrawn from the JWKS stops verifying
// tokens within JWKSRefreshInterval, also a token verified and remembered
// before, though the cache would keep it far longer and no unknown kid causes
// a fetch.
func TestVerifier_WithdrawnKey(t *testing.T) {
	s := startAuthServer(t, "RS256")
	v := newVerifier(t, auth.Config{
		JWKSURL:                s.JWKSURL(),
		JWKSRefreshInterval:    20 * time.Millisecond,
		JWKSUnknownKIDInterval: time.Hour,
		CacheTTL:               time.Hour,
	})
	old := s.UserToken("user-1", "alexa-client", time.Hour)
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatalf("Verify before the withdrawal: %v", err)
	}
	if err := s.RotateKey(); err != nil { // the old key leaves the JWKS
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := v.Verify(t.Context(), old)
		return tokens.ErrorCode(err) == tokens.EUNAUTHENTICATED
	}, "the withdrawn key to stop verifying")
}

// TestDefaultJWKSRefreshInterval: by default a withdrawn key is honoured for
// minutes, not the hour it once was.
func TestDefaultJWKSRefreshInterval(t *testing.T) {
	if got, limit := auth.DefaultJWKSRefreshInterval, 5*time.Minute; got > limit || got < auth.DefaultCacheTTL {
		t.Errorf("DefaultJWKSRefreshInterval = %v, want from DefaultCacheTTL (%v) to %v", got, auth.DefaultCacheTTL, limit)
	}
}

// TestVerifier_CritBeforeKeys: a token with a crit header is refused before
// its key is looked up, so it cannot make the broker fetch the JWKS.
func TestVerifier_CritBeforeKeys(t *testing.T) {
	s := startAuthServer(t, "RS256")
	v := newVerifier(t, auth.Config{JWKSURL: s.JWKSURL(), JWKSUnknownKIDInterval: time.Millisecond})
	before := s.JWKSRequests()
	raw := sign(t, jwt.SigningMethodRS256, keys().rsaOther, claimsAt(time.Now()), map[string]any{"kid": "made-up", "crit": []string{"b64"}, "b64": false})
	_, err := v.Verify(t.Context(), raw)
	checkError(t, err, tokens.EUNAUTHENTICATED, "crit", raw)
	if got := s.JWKSRequests() - before; got != 0 {
		t.Errorf("a crit token caused %d JWKS fetches, want 0", got)
	}
}

// heldJWKS serves the JWKS of a simulated authorization server and, while
// held, keeps each request waiting until it is let go, as a slow key server
// does.
type heldJWKS struct {
	url      string
	held     atomic.Bool
	arrived  chan struct{} // one value for each request kept waiting
	release  chan struct{} // closed to let the waiting requests go on
	once     sync.Once
	requests atomic.Int32
}

// rotatedBehindHeldJWKS returns an authorization server whose signing key
// has rotated since the verifier fetched its JWKS, with the JWKS's next
// answers held back until letGo.
func rotatedBehindHeldJWKS(tb testing.TB) (*sim.AuthServer, *heldJWKS, *auth.Verifier) {
	tb.Helper()
	s := startAuthServer(tb, "RS256")
	jwks := holdJWKS(tb, s)
	v := newVerifier(tb, auth.Config{JWKSURL: jwks.url})
	if err := s.RotateKey(); err != nil {
		tb.Fatal(err)
	}
	jwks.held.Store(true)
	return s, jwks, v
}

// holdJWKS starts a heldJWKS for s, let go and closed when the test ends.
func holdJWKS(tb testing.TB, s *sim.AuthServer) *heldJWKS {
	tb.Helper()
	h := &heldJWKS{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if h.held.Load() {
			h.arrived <- struct{}{}
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		doc, err := s.JWKS()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	h.url = srv.URL
	tb.Cleanup(srv.Close)
	tb.Cleanup(h.letGo) // runs first: Close waits for the waiting requests
	return h
}

// letGo lets the waiting requests, and those to come, go on.
func (h *heldJWKS) letGo() { h.once.Do(func() { close(h.release) }) }

// waitArrived waits until a request is kept waiting, failing the test after
// five seconds.
func (h *heldJWKS) waitArrived(tb testing.TB) {
	tb.Helper()
	select {
	case <-h.arrived:
	case <-time.After(5 * time.Second):
		tb.Fatal("timed out waiting for a JWKS request")
	}
}

// TestVerifier_Verify_JWKSRefetchOutlivesCaller: a caller that gives up while
// the JWKS is refetched for its unknown kid (it disconnected, or its deadline
// passed) leaves the refetch running. Neither the refetch, which the rate
// limit allows once in a while, nor the key set's freshness is lost to it: a
// token signed with the partner's new key verifies at once after.
func TestVerifier_Verify_JWKSRefetchOutlivesCaller(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration // 0: the caller cancels once the refetch reached the key server
	}{
		{name: "Cancelled"},
		{name: "DeadlinePassed", timeout: 10 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, jwks, v := rotatedBehindHeldJWKS(t)

			// Anyone's token naming a kid the broker does not hold.
			bogus := sign(t, jwt.SigningMethodRS256, keys().rsaOther, claimsAt(time.Now()), map[string]any{"kid": "made-up"})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			gaveUp := make(chan error, 1)
			go func() {
				_, err := v.Verify(ctx, bogus)
				gaveUp <- err
			}()
			jwks.waitArrived(t)
			if tt.timeout == 0 {
				cancel()
			}
			checkError(t, <-gaveUp, tokens.EUNAVAILABLE, "cannot be fetched", bogus)

			jwks.letGo()
			if _, err := v.Verify(t.Context(), s.UserToken("user-1", "alexa-client", time.Hour)); err != nil {
				t.Errorf("Verify of a token signed with the new key: %v", err)
			}
			if got, want := jwks.requests.Load(), int32(2); got != want {
				t.Errorf("JWKS requests = %d, want %d: the first fetch and one refetch", got, want)
			}
		})
	}
}

// TestVerifier_Verify_JWKSRefetchShared: callers that meet an unknown kid
// while the JWKS is refetched wait for that refetch, and all learn the new
// key from it.
func TestVerifier_Verify_JWKSRefetchShared(t *testing.T) {
	s, jwks, v := rotatedBehindHeldJWKS(t)

	const callers = 8
	errs := make(chan error, callers)
	for i := range callers {
		raw := s.UserToken(fmt.Sprintf("user-%d", i), "alexa-client", time.Hour)
		go func() {
			_, err := v.Verify(t.Context(), raw)
			errs <- err
		}()
	}
	jwks.waitArrived(t)
	jwks.letGo()
	for range callers {
		if err := <-errs; err != nil {
			t.Errorf("Verify of a token signed with the new key: %v", err)
		}
	}
	if got, want := jwks.requests.Load(), int32(2); got != want {
		t.Errorf("JWKS requests = %d, want %d: the first fetch and one refetch", got, want)
	}
}

// jwk is one key of a JWKS that serveJWKS publishes.
type jwk struct {
	key      any // a public key
	kid, alg string
	use      jwkset.USE
}

// serveJWKS publishes keys as a JWKS until the test ends and returns its URL.
func serveJWKS(tb testing.TB, keys ...jwk) string {
	tb.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		j, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: k.use}})
		if err != nil {
			tb.Fatalf("JWK %s: %v", k.kid, err)
		}
		set.Keys = append(set.Keys, j.Marshal())
	}
	doc, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// TestVerifier_Verify_JWKSKeyUse: a key meant for encryption (use "enc")
// never verifies a signature, nor a key whose alg is not the token's, whether
// the token names its key (kid) or not.
func TestVerifier_Verify_JWKSKeyUse(t *testing.T) {
	k := keys()
	signing := jwk{key: &k.rsa.PublicKey, kid: "sig-1", alg: "RS256", use: jwkset.UseSig}
	encryption := jwk{key: &k.rsaOther.PublicKey, kid: "enc-1", use: jwkset.UseEnc}
	for _, tt := range []struct {
		name   string
		jwks   []jwk
		key    *rsa.PrivateKey
		method jwt.SigningMethod
		kid    string // "": the token names no key
		reason string // "": accepted
	}{
		{name: "SigningKey", jwks: []jwk{signing}, key: k.rsa, method: jwt.SigningMethodRS256},
		{name: "SigningKeyByKID", jwks: []jwk{signing, encryption}, key: k.rsa, method: jwt.SigningMethodRS256, kid: "sig-1"},
		{name: "KeyOfNoUseOrAlg", jwks: []jwk{{key: &k.rsa.PublicKey, kid: "any-1"}}, key: k.rsa, method: jwt.SigningMethodPS256},
		{
			name: "OnlyEncryptionKey", jwks: []jwk{encryption}, key: k.rsaOther, method: jwt.SigningMethodRS256,
			reason: "signing key is not known",
		},
		{
			name: "EncryptionKeyBesideSigningKey", jwks: []jwk{signing, encryption}, key: k.rsaOther, method: jwt.SigningMethodRS256,
			reason: "signature is invalid", // only the signing key was tried
		},
		{
			name: "EncryptionKeyByKID", jwks: []jwk{signing, encryption}, key: k.rsaOther, method: jwt.SigningMethodRS256, kid: "enc-1",
			reason: "signing key is not known",
		},
		{
			name: "KeyOfOtherAlg", jwks: []jwk{signing}, key: k.rsa, method: jwt.SigningMethodPS256,
			reason: "signing key is not known",
		},
		{
			name: "KeyOfOtherAlgByKID", jwks: []jwk{signing}, key: k.rsa, method: jwt.SigningMethodPS256, kid: "sig-1",
			reason: "signing key is not known",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, auth.Config{JWKSURL: serveJWKS(t, tt.jwks...)})
			header := map[string]any{}
			if tt.kid != "" {
				header["kid"] = tt.kid
			}
			raw := sign(t, tt.method, tt.key, claimsAt(time.Now()), header)
			_, err := v.Verify(t.Context(), raw)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkError(t, err, tokens.EUNAUTHENTICATED, tt.reason, raw)
		})
	}
}
