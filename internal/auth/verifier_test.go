package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

const (
	testIssuer   = "https://auth.partner.example"
	testAudience = "https://broker.partner.example"
	testSecret   = tokens.Secret("0123456789abcdef0123456789abcdef-dev-only")
)

// testNow is the verifiers' clock in tests that fix time.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKeys are signing keys generated once per test binary.
type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
	ed            ed25519.PrivateKey
}

var keys = sync.OnceValue(func() testKeys {
	var k testKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// pkixPEM returns pub as a PEM "PUBLIC KEY" block.
func pkixPEM(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatalf("MarshalPKIXPublicKey: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeFile writes data to a new file in the test's temporary directory and
// returns its path.
func writeFile(tb testing.TB, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "key.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatalf("write %s: %v", path, err)
	}
	return path
}

// newVerifier returns a verifier for cfg, with testIssuer, testAudience (unless
// the profile's tokens carry no aud) and a silent logger filled in where cfg
// leaves them empty, closed when the test ends.
func newVerifier(tb testing.TB, cfg auth.Config) *auth.Verifier {
	tb.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if p, _ := auth.LookupProfile(cfg.Profile); cfg.Audience == "" && !p.NoAudience {
		cfg.Audience = testAudience
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	v, err := auth.NewVerifier(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	tb.Cleanup(func() { _ = v.Close() })
	return v
}

// claimsAt returns the claims of a valid user token issued at now.
func claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":       testIssuer,
		"aud":       testAudience,
		"sub":       "user-1",
		"client_id": "alexa-client",
		"scope":     "broker:tokens broker:profiles",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
		"jti":       "jti-1",
	}
}

// sign returns claims signed with method and key, with extra header fields.
func sign(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	tb.Helper()
	t := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		t.Header[k] = v
	}
	raw, err := t.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return raw
}

// checkError fails the test unless err is an application error with code whose
// message contains reason and nothing of the token raw.
func checkError(tb testing.TB, err error, code tokens.Code, reason, raw string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got nil error, want %s (%s)", code, reason)
	}
	if got := tokens.ErrorCode(err); got != code {
		tb.Errorf("code = %q (%v), want %q", got, err, code)
	}
	msg := tokens.ErrorMessage(err)
	if !strings.Contains(msg, reason) {
		tb.Errorf("message = %q, want it to contain %q", msg, reason)
	}
	for _, part := range append(strings.Split(raw, "."), raw) {
		if len(part) >= 8 && (strings.Contains(err.Error(), part) || strings.Contains(msg, part)) {
			tb.Errorf("error %q contains a part of the token", err)
		}
	}
}

func TestVerifier_Verify(t *testing.T) {
	k := keys()
	pemFile := writeFile(t, pkixPEM(t, &k.rsa.PublicKey))
	v := newVerifier(t, auth.Config{PublicKeyFile: pemFile, Now: func() time.Time { return testNow }})
	rsaPEM := pkixPEM(t, &k.rsa.PublicKey)

	type tc struct {
		name   string
		token  func(t *testing.T) string
		code   tokens.Code // "" for success
		reason string      // part of the error message
		scopes []string    // the principal's scopes on success
	}
	valid := func(mutate func(jwt.MapClaims)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := claimsAt(testNow)
			if mutate != nil {
				mutate(c)
			}
			return sign(t, jwt.SigningMethodRS256, k.rsa, c, nil)
		}
	}
	defaultScopes := []string{"broker:tokens", "broker:profiles"}
	for _, tc := range []tc{
		{name: "RS256", token: valid(nil), scopes: defaultScopes},
		{name: "PS256", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodPS256, k.rsa, claimsAt(testNow), nil)
		}, scopes: defaultScopes},
		{name: "ExpiredWithinLeeway", token: valid(func(c jwt.MapClaims) {
			c["exp"] = testNow.Add(-30 * time.Second).Unix()
		}), scopes: defaultScopes},
		{name: "ExpiredBeyondLeeway", token: valid(func(c jwt.MapClaims) {
			c["exp"] = testNow.Add(-61 * time.Second).Unix()
		}), code: tokens.EUNAUTHENTICATED, reason: "expired"},
		{name: "NoExpiry", token: valid(func(c jwt.MapClaims) { delete(c, "exp") }),
			code: tokens.EUNAUTHENTICATED, reason: "no expiry"},
		{name: "NotBeforeWithinLeeway", token: valid(func(c jwt.MapClaims) {
			c["nbf"] = testNow.Add(30 * time.Second).Unix()
		}), scopes: defaultScopes},
		{name: "NotBeforeInFuture", token: valid(func(c jwt.MapClaims) {
			c["nbf"] = testNow.Add(2 * time.Minute).Unix()
		}), code: tokens.EUNAUTHENTICATED, reason: "not valid yet"},
		{name: "WrongIssuer", token: valid(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }),
			code: tokens.EUNAUTHENTICATED, reason: "issuer"},
		{name: "NoIssuer", token: valid(func(c jwt.MapClaims) { delete(c, "iss") }),
			code: tokens.EUNAUTHENTICATED, reason: "no issuer"},
		{name: "WrongAudience", token: valid(func(c jwt.MapClaims) { c["aud"] = "https://other.example" }),
			code: tokens.EUNAUTHENTICATED, reason: "audience"},
		{name: "NoAudience", token: valid(func(c jwt.MapClaims) { delete(c, "aud") }),
			code: tokens.EUNAUTHENTICATED, reason: "no audience"},
		{name: "AudienceList", token: valid(func(c jwt.MapClaims) {
			c["aud"] = []string{"https://other.example", testAudience}
		}), scopes: defaultScopes},
		{name: "MissingSubject", token: valid(func(c jwt.MapClaims) { delete(c, "sub") }),
			code: tokens.EUNAUTHENTICATED, reason: "no subject"},
		{name: "EmptySubject", token: valid(func(c jwt.MapClaims) { c["sub"] = "" }),
			code: tokens.EUNAUTHENTICATED, reason: "no subject"},
		{name: "ScopeSpaces", token: valid(func(c jwt.MapClaims) { c["scope"] = "  broker:admin   broker:tokens " }),
			scopes: []string{"broker:admin", "broker:tokens"}},
		{name: "ScopeList", token: valid(func(c jwt.MapClaims) { c["scope"] = []string{"broker:admin"} }),
			scopes: []string{"broker:admin"}},
		{name: "NoScope", token: valid(func(c jwt.MapClaims) { delete(c, "scope") })},
		{name: "ScopeNumber", token: valid(func(c jwt.MapClaims) { c["scope"] = 7 }),
			code: tokens.EUNAUTHENTICATED, reason: "scope is neither a string nor a list"},
		{name: "AlgNone", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsAt(testNow), nil)
		}, code: tokens.EUNAUTHENTICATED, reason: "algorithm is not allowed"},
		{name: "AlgorithmConfusion", token: func(t *testing.T) string {
			// HS256 "signed" with the RSA public key as the HMAC secret.
			return sign(t, jwt.SigningMethodHS256, rsaPEM, claimsAt(testNow), nil)
		}, code: tokens.EUNAUTHENTICATED, reason: "algorithm is not allowed"},
		{name: "ES256ForRSAKey", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodES256, k.ec, claimsAt(testNow), nil)
		}, code: tokens.EUNAUTHENTICATED, reason: "algorithm is not allowed"},
		{name: "RS512", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS512, k.rsa, claimsAt(testNow), nil)
		}, code: tokens.EUNAUTHENTICATED, reason: "algorithm is not allowed"},
		{name: "UnknownAlg", token: func(t *testing.T) string {
			raw := sign(t, jwt.SigningMethodRS256, k.rsa, claimsAt(testNow), nil)
			parts := strings.Split(raw, ".")
			parts[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XX999","typ":"JWT"}`))
			return strings.Join(parts, ".")
		}, code: tokens.EUNAUTHENTICATED, reason: "algorithm is not allowed"},
		{name: "OtherKey", token: func(t *testing.T) string {
			return sign(t, jwt.SigningMethodRS256, k.rsaOther, claimsAt(testNow), nil)
		}, code: tokens.EUNAUTHENTICATED, reason: "signature is invalid"},
		{name: "TamperedSignature", token: func(t *testing.T) string {
			raw := valid(nil)(t)
			parts := strings.Split(raw, ".")
			sig := []byte(parts[2])
			if sig[10] == 'A' {
				sig[10] = 'B'
			} else {
				sig[10] = 'A'
			}
			parts[2] = string(sig)
			return strings.Join(parts, ".")
		}, code: tokens.EUNAUTHENTICATED, reason: "signature is invalid"},
		{name: "TamperedPayload", token: func(t *testing.T) string {
			raw := valid(nil)(t)
			parts := strings.Split(raw, ".")
			c := claimsAt(testNow)
			c["sub"] = "someone-else"
			payload, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			return strings.Join(parts, ".")
		}, code: tokens.EUNAUTHENTICATED, reason: "signature is invalid"},
		{name: "Malformed", token: func(*testing.T) string { return "not-a.jwt" },
			code: tokens.EUNAUTHENTICATED, reason: "malformed"},
		{name: "GarbageSegments", token: func(*testing.T) string { return "eyJhbGciOiJSUzI1NiJ9.!!!!.sig" },
			code: tokens.EUNAUTHENTICATED, reason: "malformed"},
		{name: "Empty", token: func(*testing.T) string { return "" },
			code: tokens.EUNAUTHENTICATED, reason: "no token"},
		{name: "TooLarge", token: valid(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", auth.MaxTokenSize) }),
			code: tokens.EUNAUTHENTICATED, reason: "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.token(t)
			p, err := v.Verify(context.Background(), raw)
			if tc.code != "" {
				checkError(t, err, tc.code, tc.reason, raw)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got, want := p.Subject, "user-1"; got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
			if got, want := p.ClientID, "alexa-client"; got != want {
				t.Errorf("ClientID = %q, want %q", got, want)
			}
			if !slices.Equal(p.Scopes, tc.scopes) {
				t.Errorf("Scopes = %q, want %q", p.Scopes, tc.scopes)
			}
		})
	}
}

func TestVerifier_Verify_Leeway(t *testing.T) {
	k := keys()
	pemFile := writeFile(t, pkixPEM(t, &k.rsa.PublicKey))
	c := claimsAt(testNow)
	c["exp"] = testNow.Add(-10 * time.Second).Unix()
	raw := sign(t, jwt.SigningMethodRS256, k.rsa, c, nil)
	for _, tc := range []struct {
		name   string
		leeway time.Duration
		ok     bool
	}{
		{"Default", 0, true},
		{"Short", 5 * time.Second, false},
		{"None", -1, false},
		{"Max", auth.MaxLeeway, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, auth.Config{PublicKeyFile: pemFile, Leeway: tc.leeway, Now: func() time.Time { return testNow }})
			_, err := v.Verify(context.Background(), raw)
			if tc.ok && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tc.ok {
				checkError(t, err, tokens.EUNAUTHENTICATED, "expired", raw)
			}
		})
	}
}

func TestVerifier_Verify_PublicKeyTypes(t *testing.T) {
	k := keys()
	rsaCert := selfSigned(t, k.rsa, &k.rsa.PublicKey)
	for _, tc := range []struct {
		name    string
		pem     []byte
		method  jwt.SigningMethod
		key     any
		methods []string
	}{
		{"RSA", pkixPEM(t, &k.rsa.PublicKey), jwt.SigningMethodRS256, k.rsa, []string{"RS256", "PS256"}},
		{"RSAPKCS1", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}),
			jwt.SigningMethodPS256, k.rsa, []string{"RS256", "PS256"}},
		{"RSACertificate", rsaCert, jwt.SigningMethodRS256, k.rsa, []string{"RS256", "PS256"}},
		{"ECDSA", pkixPEM(t, &k.ec.PublicKey), jwt.SigningMethodES256, k.ec, []string{"ES256"}},
		{"Ed25519", pkixPEM(t, k.ed.Public()), jwt.SigningMethodEdDSA, k.ed, []string{"EdDSA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, auth.Config{PublicKeyFile: writeFile(t, tc.pem), Now: func() time.Time { return testNow }})
			if got := v.Methods(); !slices.Equal(got, tc.methods) {
				t.Errorf("Methods() = %q, want %q", got, tc.methods)
			}
			raw := sign(t, tc.method, tc.key, claimsAt(testNow), nil)
			p, err := v.Verify(context.Background(), raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got, want := p.Subject, "user-1"; got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
			// The key's public form as an HMAC secret never verifies.
			confused := sign(t, jwt.SigningMethodHS256, tc.pem, claimsAt(testNow), nil)
			_, err = v.Verify(context.Background(), confused)
			checkError(t, err, tokens.EUNAUTHENTICATED, "algorithm is not allowed", confused)
		})
	}
}

func TestVerifier_Verify_HS256(t *testing.T) {
	k := keys()
	v := newVerifier(t, auth.Config{HS256Secret: testSecret, Now: func() time.Time { return testNow }})
	for _, tc := range []struct {
		name   string
		token  string
		reason string
	}{
		{name: "Valid", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret.Reveal()), claimsAt(testNow), nil)},
		{name: "WrongSecret", token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-enough-length-0123456789"), claimsAt(testNow), nil),
			reason: "signature is invalid"},
		{name: "HS512", token: sign(t, jwt.SigningMethodHS512, []byte(testSecret.Reveal()), claimsAt(testNow), nil),
			reason: "algorithm is not allowed"},
		{name: "RS256", token: sign(t, jwt.SigningMethodRS256, k.rsa, claimsAt(testNow), nil),
			reason: "algorithm is not allowed"},
		{name: "AlgNone", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claimsAt(testNow), nil),
			reason: "algorithm is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tc.token)
			if tc.reason != "" {
				checkError(t, err, tokens.EUNAUTHENTICATED, tc.reason, tc.token)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got, want := p.Subject, "user-1"; got != want {
				t.Errorf("Subject = %q, want %q", got, want)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	k := keys()
	rsaFile := writeFile(t, pkixPEM(t, &k.rsa.PublicKey))
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k.ec)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  auth.Config
		want string // part of the error message
	}{
		{"NoIssuer", auth.Config{Audience: testAudience, PublicKeyFile: rsaFile}, "issuer"},
		{"NoAudience", auth.Config{Issuer: testIssuer, PublicKeyFile: rsaFile}, "audience"},
		{"NoKeySource", auth.Config{Issuer: testIssuer, Audience: testAudience}, "exactly one"},
		{"TwoKeySources", auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyFile: rsaFile, HS256Secret: testSecret}, "exactly one"},
		{"LeewayTooLong", auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyFile: rsaFile, Leeway: 61 * time.Second}, "leeway"},
		{"ShortSecret", auth.Config{Issuer: testIssuer, Audience: testAudience, HS256Secret: "short"}, "HS256 secret"},
		{"BadJWKSURL", auth.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: "ftp://example.com/jwks"}, "JWKS URL"},
		{"RelativeJWKSURL", auth.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: "/jwks.json"}, "JWKS URL"},
		{"MissingFile", auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyFile: filepath.Join(t.TempDir(), "nope.pem")}, "read public key file"},
		{"NotPEM", auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyFile: writeFile(t, []byte("hello"))}, "no PEM block"},
		{"PrivateKey", auth.Config{Issuer: testIssuer, Audience: testAudience,
			PublicKeyFile: writeFile(t, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))}, "private key"},
		{"SmallRSA", auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyFile: writeFile(t, pkixPEM(t, &small.PublicKey))}, "1024 bits"},
		{"P384", auth.Config{Issuer: testIssuer, Audience: testAudience, PublicKeyFile: writeFile(t, pkixPEM(t, &p384.PublicKey))}, "P-256"},
		{"BrokenDER", auth.Config{Issuer: testIssuer, Audience: testAudience,
			PublicKeyFile: writeFile(t, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))}, "parse PEM block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := auth.NewVerifier(context.Background(), tc.cfg)
			if err == nil {
				_ = v.Close()
				t.Fatalf("NewVerifier: got nil error, want one about %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewVerifier: error %q, want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), testSecret.Reveal()) {
				t.Errorf("NewVerifier: error %q contains the secret", err)
			}
		})
	}
}

// selfSigned returns a PEM certificate for pub, signed by priv.
func selfSigned(tb testing.TB, priv any, pub any) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "auth.partner.example"},
		NotBefore:    testNow.Add(-time.Hour),
		NotAfter:     testNow.Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		tb.Fatalf("CreateCertificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func BenchmarkVerifier_Verify(b *testing.B) {
	k := keys()
	for _, bc := range []struct {
		name   string
		pem    []byte
		method jwt.SigningMethod
		key    any
	}{
		{"RS256", pkixPEM(b, &k.rsa.PublicKey), jwt.SigningMethodRS256, k.rsa},
		{"ES256", pkixPEM(b, &k.ec.PublicKey), jwt.SigningMethodES256, k.ec},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v := newVerifier(b, auth.Config{PublicKeyFile: writeFile(b, bc.pem), Now: func() time.Time { return testNow }})
			raw := sign(b, bc.method, bc.key, claimsAt(testNow), nil)
			ctx := context.Background()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
