package sim_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// startSet starts a Set with opts; it is closed when the test ends.
func startSet(tb testing.TB, opts sim.SetOptions) *sim.Set {
	tb.Helper()
	s, err := sim.StartSet(context.Background(), opts)
	if err != nil {
		tb.Fatalf("StartSet: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// adminCall sends a request to the Set's admin route and returns the status
// and body of the answer.
func adminCall(tb testing.TB, s *sim.Set, method, path string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, s.AdminURL()+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStartSet(t *testing.T) {
	t.Run("FreePorts", func(t *testing.T) {
		s := startSet(t, sim.SetOptions{})
		urls := []string{s.LWA.URL(), s.Alexa.URL(), s.Auth.URL(), s.AdminURL()}
		for _, u := range urls {
			if !strings.HasPrefix(u, "http://127.0.0.1:") {
				t.Errorf("URL %q, want one on 127.0.0.1", u)
			}
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(urls))); len(distinct) != len(urls) {
			t.Errorf("URLs %v, want four different ones", urls)
		}
		if s.KMS != nil {
			t.Error("KMS started without SetOptions.KMS")
		}
	})
	t.Run("FixedPorts", func(t *testing.T) {
		opts := sim.SetOptions{LWAAddr: freeAddr(t), AlexaAddr: freeAddr(t), AuthAddr: freeAddr(t), AdminAddr: freeAddr(t)}
		s := startSet(t, opts)
		for _, tc := range []struct{ name, url, addr string }{
			{"LWA", s.LWA.URL(), opts.LWAAddr},
			{"Alexa", s.Alexa.URL(), opts.AlexaAddr},
			{"Auth", s.Auth.URL(), opts.AuthAddr},
			{"Admin", s.AdminURL(), opts.AdminAddr},
		} {
			if got, want := tc.url, "http://"+tc.addr; got != want {
				t.Errorf("%s URL = %q, want %q", tc.name, got, want)
			}
		}
	})
	t.Run("KMS", func(t *testing.T) {
		s := startSet(t, sim.SetOptions{KMS: true})
		if s.KMS == nil || s.KMS.URL() == "" {
			t.Fatal("KMS not started")
		}
		env := s.BrokerEnv()
		if got, want := env["BROKER_KMS_ENDPOINT"], s.KMS.URL(); got != want {
			t.Errorf("BROKER_KMS_ENDPOINT = %q, want %q", got, want)
		}
		if got, want := env["BROKER_ENCRYPTION_KEY"], "kms:"+sim.DefaultKMSKeyID; got != want {
			t.Errorf("BROKER_ENCRYPTION_KEY = %q, want %q", got, want)
		}
	})
	t.Run("NotLoopback", func(t *testing.T) {
		lwaAddr := freeAddr(t)
		_, err := sim.StartSet(context.Background(), sim.SetOptions{LWAAddr: lwaAddr, AuthAddr: "192.0.2.1:0"})
		if err == nil || !strings.Contains(err.Error(), "authorization server") {
			t.Fatalf("StartSet error = %v, want one naming the authorization server", err)
		}
		// What had started was stopped: the LWA simulator's port is free again.
		ln, err := net.Listen("tcp", lwaAddr)
		if err != nil {
			t.Fatalf("the LWA simulator's address is still taken: %v", err)
		}
		ln.Close()
	})
	t.Run("PortTaken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = sim.StartSet(context.Background(), sim.SetOptions{AdminAddr: ln.Addr().String()})
		if err == nil || !strings.Contains(err.Error(), "admin route") {
			t.Fatalf("StartSet error = %v, want one naming the admin route", err)
		}
	})
}

func TestSet_BrokerEnv(t *testing.T) {
	s := startSet(t, sim.SetOptions{AlexaClientID: "alexa-test"})
	env := s.BrokerEnv()
	for _, tc := range []struct{ name, got, want string }{
		{"BROKER_LWA_CLIENT_ID", env["BROKER_LWA_CLIENT_ID"], s.LWA.ClientID()},
		{"BROKER_LWA_CLIENT_SECRET", env["BROKER_LWA_CLIENT_SECRET"], s.LWA.ClientSecret()},
		{"BROKER_LWA_TOKEN_URL", env["BROKER_LWA_TOKEN_URL"], s.LWA.URL() + sim.LWATokenPath},
		{"BROKER_ALEXA_API_URL", env["BROKER_ALEXA_API_URL"], s.Alexa.URL()},
		{"BROKER_ALEXA_CLIENT_IDS", env["BROKER_ALEXA_CLIENT_IDS"], "alexa-test"},
		{"BROKER_JWT_ISSUER", env["BROKER_JWT_ISSUER"], s.Auth.URL()},
		{"BROKER_JWT_AUDIENCE", env["BROKER_JWT_AUDIENCE"], sim.DefaultAudience},
		{"BROKER_JWT_JWKS_URL", env["BROKER_JWT_JWKS_URL"], s.Auth.URL() + sim.JWKSPath},
		{"BROKER_WEBHOOK_URL", env["BROKER_WEBHOOK_URL"], s.Webhooks.URL()},
		{"BROKER_WEBHOOK_SECRET", env["BROKER_WEBHOOK_SECRET"], s.Webhooks.Secret().Reveal()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
			}
		})
	}
	if len(env) != 10 {
		t.Errorf("BrokerEnv has %d settings, want 10", len(env))
	}
	env["BROKER_LWA_CLIENT_ID"] = "changed"
	if s.BrokerEnv()["BROKER_LWA_CLIENT_ID"] == "changed" {
		t.Error("BrokerEnv returned a shared map")
	}
}

func TestSet_Admin(t *testing.T) {
	clk := sim.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	s := startSet(t, sim.SetOptions{Now: clk.Now, User: "parent"})

	t.Run("Codes", func(t *testing.T) {
		for _, tc := range []struct{ name, query, user string }{
			{"DefaultUser", "", "parent"},
			{"NamedUser", "?user=other", "other"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, code := adminCall(t, s, "POST", "/codes"+tc.query)
				if status != http.StatusOK || code == "" {
					t.Fatalf("POST /codes = %d %q, want 200 and a code", status, code)
				}
				a := lwaPost(t, s.LWA, url.Values{"grant_type": {"authorization_code"}, "code": {code}}, true)
				if a.Status != http.StatusOK {
					t.Fatalf("exchange of the code = %d %v", a.Status, a.Body)
				}
				token, _ := a.Body["access_token"].(string)
				if user, ok := s.LWA.AccessTokenUser(token); !ok || user != tc.user {
					t.Errorf("the code's token belongs to %q (%v), want %q", user, ok, tc.user)
				}
			})
		}
	})
	t.Run("Faults", func(t *testing.T) {
		status, body := adminCall(t, s, "POST", "/faults/alexa/403")
		if status != http.StatusOK || !strings.Contains(body, "parent") {
			t.Fatalf("POST /faults/alexa/403 = %d %s, want 200 naming the user", status, body)
		}
		if status, body := adminCall(t, s, "POST", "/faults/alexa/nonsense"); status != http.StatusBadRequest {
			t.Errorf("POST of an unknown fault = %d %s, want 400", status, body)
		}
		if status, body := adminCall(t, s, "DELETE", "/faults"); status != http.StatusOK {
			t.Errorf("DELETE /faults = %d %s, want 200", status, body)
		}
	})
}

func TestSet_Close(t *testing.T) {
	s, err := sim.StartSet(context.Background(), sim.SetOptions{KMS: true})
	if err != nil {
		t.Fatal(err)
	}
	urls := []string{s.LWA.URL(), s.Alexa.URL(), s.Auth.URL(), s.KMS.URL(), s.AdminURL()}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, u := range urls {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after Close", u)
		}
	}
}

func TestSet_ContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := sim.StartSet(ctx, sim.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin := s.AdminURL()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(admin)
		if err != nil {
			return
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the admin route still answers 5 s after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
