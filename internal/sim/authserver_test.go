package sim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// startAuthServer runs an AuthServer on 127.0.0.1 until the test ends.
func startAuthServer(tb testing.TB, opts sim.AuthServerOptions) *sim.AuthServer {
	tb.Helper()
	s, err := sim.NewAuthServer(opts)
	if err != nil {
		tb.Fatalf("NewAuthServer: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// get fetches url and returns the status code and body.
func get(tb testing.TB, url string) (int, []byte) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, body
}

// parseWithJWKS verifies raw against the server's published JWKS, as a resource
// server would, and returns its claims.
func parseWithJWKS(tb testing.TB, s *sim.AuthServer, raw string, now time.Time) (*sim.AccessClaims, error) {
	tb.Helper()
	status, body := get(tb, s.JWKSURL())
	if status != http.StatusOK {
		tb.Fatalf("GET JWKS: status %d", status)
	}
	kf, err := keyfunc.NewJWKSetJSON(body)
	if err != nil {
		tb.Fatalf("NewJWKSetJSON: %v", err)
	}
	var claims sim.AccessClaims
	_, err = jwt.ParseWithClaims(raw, &claims, kf.Keyfunc,
		jwt.WithValidMethods([]string{s.Algorithm()}),
		jwt.WithIssuer(s.Issuer()),
		jwt.WithAudience(s.Audience()),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	return &claims, err
}

func TestNewAuthServer(t *testing.T) {
	t.Run("UnsupportedAlgorithm", func(t *testing.T) {
		for _, alg := range []string{"HS256", "none", "RS512"} {
			if _, err := sim.NewAuthServer(sim.AuthServerOptions{Algorithm: alg}); err == nil {
				t.Errorf("NewAuthServer(%q): got nil error, want one", alg)
			}
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		s := startAuthServer(t, sim.AuthServerOptions{})
		if got, want := s.Algorithm(), "RS256"; got != want {
			t.Errorf("Algorithm() = %q, want %q", got, want)
		}
		if got, want := s.Issuer(), s.URL(); got != want {
			t.Errorf("Issuer() = %q, want the URL %q", got, want)
		}
		if got, want := s.Audience(), sim.DefaultAudience; got != want {
			t.Errorf("Audience() = %q, want %q", got, want)
		}
	})
}

func TestAuthServer_Tokens(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, alg := range []string{"RS256", "PS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			s := startAuthServer(t, sim.AuthServerOptions{
				Issuer:    "https://auth.partner.example",
				Audience:  "https://broker.partner.example",
				Algorithm: alg,
				Now:       func() time.Time { return now },
			})

			t.Run("UserToken", func(t *testing.T) {
				raw := s.UserToken("user-1", "alexa-client", time.Hour)
				claims, err := parseWithJWKS(t, s, raw, now)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if got, want := claims.Subject, "user-1"; got != want {
					t.Errorf("sub = %q, want %q", got, want)
				}
				if got, want := claims.ClientID, "alexa-client"; got != want {
					t.Errorf("client_id = %q, want %q", got, want)
				}
				if got, want := claims.Issuer, "https://auth.partner.example"; got != want {
					t.Errorf("iss = %q, want %q", got, want)
				}
				if got, want := claims.ExpiresAt.Time, now.Add(time.Hour); !got.Equal(want) {
					t.Errorf("exp = %v, want %v", got, want)
				}
				if got, want := claims.IssuedAt.Time, now; !got.Equal(want) {
					t.Errorf("iat = %v, want %v", got, want)
				}
				if claims.ID == "" {
					t.Error("jti is empty")
				}
			})

			t.Run("ClientToken", func(t *testing.T) {
				raw := s.ClientToken("companion", []string{"broker:tokens", "broker:profiles"}, time.Minute)
				claims, err := parseWithJWKS(t, s, raw, now)
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if got, want := claims.Subject, "companion"; got != want {
					t.Errorf("sub = %q, want %q", got, want)
				}
				if got, want := claims.ClientID, "companion"; got != want {
					t.Errorf("client_id = %q, want %q", got, want)
				}
				if got, want := claims.Scope, "broker:tokens broker:profiles"; got != want {
					t.Errorf("scope = %q, want %q", got, want)
				}
			})

			t.Run("Header", func(t *testing.T) {
				raw := s.UserToken("user-1", "alexa-client", time.Hour)
				tok, _, err := jwt.NewParser().ParseUnverified(raw, &sim.AccessClaims{})
				if err != nil {
					t.Fatalf("ParseUnverified: %v", err)
				}
				if got, want := tok.Header["kid"], s.KeyID(); got != want {
					t.Errorf("kid = %v, want %q", got, want)
				}
				if got, want := tok.Header["typ"], "at+jwt"; got != want {
					t.Errorf("typ = %v, want %q", got, want)
				}
				if got, want := tok.Header["alg"], alg; got != want {
					t.Errorf("alg = %v, want %q", got, want)
				}
			})

			t.Run("Expired", func(t *testing.T) {
				raw := s.UserToken("user-1", "alexa-client", time.Minute)
				if _, err := parseWithJWKS(t, s, raw, now.Add(2*time.Minute)); err == nil {
					t.Error("parse of an expired token: got nil error, want one")
				}
			})
		})
	}
}

func TestAuthServer_JWKS(t *testing.T) {
	s := startAuthServer(t, sim.AuthServerOptions{Algorithm: "ES256"})

	status, body := get(t, s.JWKSURL())
	if status != http.StatusOK {
		t.Fatalf("status = %d, want 200", status)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("unmarshal JWKS: %v", err)
	}
	if got, want := len(doc.Keys), 1; got != want {
		t.Fatalf("len(keys) = %d, want %d", got, want)
	}
	key := doc.Keys[0]
	for name, want := range map[string]string{"kid": s.KeyID(), "alg": "ES256", "use": "sig", "kty": "EC", "crv": "P-256"} {
		if got := key[name]; got != want {
			t.Errorf("%s = %v, want %q", name, got, want)
		}
	}
	if _, ok := key["d"]; ok {
		t.Error("JWKS publishes the private key")
	}
	if got, want := s.JWKSRequests(), 1; got != want {
		t.Errorf("JWKSRequests() = %d, want %d", got, want)
	}
}

func TestAuthServer_RotateKey(t *testing.T) {
	now := time.Now()
	s := startAuthServer(t, sim.AuthServerOptions{Now: func() time.Time { return now }})
	oldKID := s.KeyID()
	old := s.UserToken("user-1", "alexa-client", time.Hour)

	if err := s.RotateKey(); err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	if s.KeyID() == oldKID {
		t.Fatalf("KeyID() = %q after RotateKey, want a new one", oldKID)
	}

	t.Run("OldKeyDropped", func(t *testing.T) {
		_, body := get(t, s.JWKSURL())
		var doc struct {
			Keys []struct {
				KID string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("unmarshal JWKS: %v", err)
		}
		var kids []string
		for _, k := range doc.Keys {
			kids = append(kids, k.KID)
		}
		if got, want := kids, []string{s.KeyID()}; !slices.Equal(got, want) {
			t.Errorf("kids = %v, want %v", got, want)
		}
		if _, err := parseWithJWKS(t, s, old, now); err == nil {
			t.Error("token of the dropped key: got nil error, want one")
		}
	})
	t.Run("NewKeyVerifies", func(t *testing.T) {
		raw := s.UserToken("user-1", "alexa-client", time.Hour)
		if _, err := parseWithJWKS(t, s, raw, now); err != nil {
			t.Errorf("parse: %v", err)
		}
	})
}

func TestAuthServer_FailJWKS(t *testing.T) {
	s := startAuthServer(t, sim.AuthServerOptions{})
	s.FailJWKS(http.StatusServiceUnavailable)
	if status, _ := get(t, s.JWKSURL()); status != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", status)
	}
	s.FailJWKS(0)
	if status, _ := get(t, s.JWKSURL()); status != http.StatusOK {
		t.Errorf("status after FailJWKS(0) = %d, want 200", status)
	}
	if got, want := s.JWKSRequests(), 2; got != want {
		t.Errorf("JWKSRequests() = %d, want %d", got, want)
	}
}

func TestAuthServer_ServeHTTP(t *testing.T) {
	s := startAuthServer(t, sim.AuthServerOptions{Issuer: "https://auth.partner.example"})

	t.Run("Discovery", func(t *testing.T) {
		for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			status, body := get(t, s.URL()+path)
			if status != http.StatusOK {
				t.Fatalf("%s: status = %d, want 200", path, status)
			}
			var doc struct {
				Issuer  string `json:"issuer"`
				JWKSURI string `json:"jwks_uri"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatalf("%s: unmarshal: %v", path, err)
			}
			if got, want := doc.Issuer, "https://auth.partner.example"; got != want {
				t.Errorf("%s: issuer = %q, want %q", path, got, want)
			}
			if got, want := doc.JWKSURI, s.JWKSURL(); got != want {
				t.Errorf("%s: jwks_uri = %q, want %q", path, got, want)
			}
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		if status, _ := get(t, s.URL()+"/nope"); status != http.StatusNotFound {
			t.Errorf("status = %d, want 404", status)
		}
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		resp, err := http.Post(s.JWKSURL(), "text/plain", nil)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		resp.Body.Close()
		if got, want := resp.StatusCode, http.StatusMethodNotAllowed; got != want {
			t.Errorf("status = %d, want %d", got, want)
		}
	})
}

func TestAuthServer_Start(t *testing.T) {
	t.Run("NotLoopback", func(t *testing.T) {
		for _, addr := range []string{"0.0.0.0:0", ":0", "example.com:80", "nonsense"} {
			s, err := sim.NewAuthServer(sim.AuthServerOptions{Addr: addr})
			if err != nil {
				t.Fatalf("NewAuthServer: %v", err)
			}
			if err := s.Start(context.Background()); err == nil {
				_ = s.Close()
				t.Errorf("Start on %q: got nil error, want one", addr)
			}
		}
	})
	t.Run("Twice", func(t *testing.T) {
		s := startAuthServer(t, sim.AuthServerOptions{})
		if err := s.Start(context.Background()); err == nil {
			t.Error("second Start: got nil error, want one")
		}
	})
	t.Run("ContextDone", func(t *testing.T) {
		s, err := sim.NewAuthServer(sim.AuthServerOptions{})
		if err != nil {
			t.Fatalf("NewAuthServer: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := s.Start(ctx); err != nil {
			t.Fatalf("Start: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		cancel()
		client := &http.Client{Timeout: time.Second}
		for deadline := time.Now().Add(5 * time.Second); ; {
			resp, err := client.Get(s.JWKSURL())
			if err != nil {
				break // stopped
			}
			resp.Body.Close()
			if time.Now().After(deadline) {
				t.Fatal("server still answers after its context was done")
			}
			<-time.After(10 * time.Millisecond)
		}
	})
	t.Run("CloseWithoutStart", func(t *testing.T) {
		s, err := sim.NewAuthServer(sim.AuthServerOptions{})
		if err != nil {
			t.Fatalf("NewAuthServer: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}
