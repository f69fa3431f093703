package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reciprocal-broker/broker/internal/sim"
)

func TestAuthServer_ClientCredentials(t *testing.T) {
	s := startAuthServer(t, sim.AuthServerOptions{})
	s.RegisterClient("ops", "s3cret/+&", []string{"broker:admin", "broker:tokens"})
	config := func(secret string, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
		return &clientcredentials.Config{ClientID: "ops", ClientSecret: secret, TokenURL: s.URL() + sim.TokenPath, Scopes: scopes, AuthStyle: style}
	}

	t.Run("Discovery", func(t *testing.T) {
		_, body := get(t, s.URL()+"/.well-known/openid-configuration")
		var doc struct {
			TokenEndpoint string `json:"token_endpoint"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if got, want := doc.TokenEndpoint, s.URL()+sim.TokenPath; got != want {
			t.Errorf("token_endpoint = %q, want %q", got, want)
		}
	})
	for _, tt := range []struct {
		name       string
		style      oauth2.AuthStyle
		scopes     []string
		wantScopes string
	}{
		{"Basic", oauth2.AuthStyleInHeader, []string{"broker:admin"}, "broker:admin"},
		{"Form", oauth2.AuthStyleInParams, []string{"broker:admin"}, "broker:admin"},
		{"AutoDetect", oauth2.AuthStyleAutoDetect, []string{"broker:tokens", "broker:admin"}, "broker:tokens broker:admin"},
		{"NoScope", oauth2.AuthStyleInHeader, nil, "broker:admin broker:tokens"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := config("s3cret/+&", tt.style, tt.scopes...).Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if got, want := tok.TokenType, "Bearer"; got != want {
				t.Errorf("token_type = %q, want %q", got, want)
			}
			if d := time.Until(tok.Expiry); d < 59*time.Minute || d > time.Hour {
				t.Errorf("expires in %v, want an hour", d)
			}
			claims, err := parseWithJWKS(t, s, tok.AccessToken, time.Now())
			if err != nil {
				t.Fatalf("the token does not verify: %v", err)
			}
			if claims.Subject != "ops" || claims.ClientID != "ops" || claims.Scope != tt.wantScopes {
				t.Errorf("claims sub=%q client_id=%q scope=%q, want ops, ops, %q", claims.Subject, claims.ClientID, claims.Scope, tt.wantScopes)
			}
		})
	}
	t.Run("Refused", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			c    *clientcredentials.Config
			want string
		}{
			{"WrongSecret", config("wrong", oauth2.AuthStyleInHeader), "invalid_client"},
			{"UnknownClient", &clientcredentials.Config{ClientID: "nobody", ClientSecret: "x", TokenURL: s.URL() + sim.TokenPath, AuthStyle: oauth2.AuthStyleInParams}, "invalid_client"},
			{"ScopeNotGranted", config("s3cret/+&", oauth2.AuthStyleInHeader, "broker:events"), "invalid_scope"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := tt.c.Token(context.Background())
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != tt.want {
					t.Errorf("Token: err = %v, want %s", err, tt.want)
				}
			})
		}
	})
	t.Run("OtherGrant", func(t *testing.T) {
		resp, err := http.PostForm(s.URL()+sim.TokenPath, url.Values{"grant_type": {"password"}, "client_id": {"ops"}, "client_secret": {"s3cret/+&"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusBadRequest || body.Error != "unsupported_grant_type" {
			t.Errorf("answer = %d %q, want 400 unsupported_grant_type", resp.StatusCode, body.Error)
		}
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		if status, body := get(t, s.URL()+sim.TokenPath); status != http.StatusMethodNotAllowed || !strings.Contains(string(body), "invalid_request") {
			t.Errorf("GET: %d %s, want 405 invalid_request", status, body)
		}
	})
	if s.TokenRequests() == 0 {
		t.Error("TokenRequests() = 0 after requests")
	}
}
