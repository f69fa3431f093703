package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/config"
)

func TestParse_Console(t *testing.T) {
	t.Run("Off", func(t *testing.T) {
		c, err := config.Parse(nil, getenv(validEnv()))
		if err != nil {
			t.Fatal(err)
		}
		if c.ConsoleClientID != "" || c.PublicURL != "" || c.ConsoleAudience != "" {
			t.Errorf("console defaults: client %q, public URL %q, audience %q; want none", c.ConsoleClientID, c.PublicURL, c.ConsoleAudience)
		}
		if want := []string{"openid", "broker:admin"}; !slices.Equal(c.ConsoleScopes, want) {
			t.Errorf("ConsoleScopes = %q, want %q", c.ConsoleScopes, want)
		}
	})
	t.Run("AdminScopeRenamed", func(t *testing.T) {
		env := validEnv()
		env["BROKER_SCOPE_ADMIN"] = "api://broker/admin"
		c, err := config.Parse(nil, getenv(env))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"openid", "api://broker/admin"}; !slices.Equal(c.ConsoleScopes, want) {
			t.Errorf("ConsoleScopes = %q, want %q", c.ConsoleScopes, want)
		}
	})
	t.Run("On", func(t *testing.T) {
		env := validEnv()
		env["BROKER_CONSOLE_CLIENT_ID"] = "broker-console"
		env["BROKER_PUBLIC_URL"] = "https://broker.partner.example/ops/"
		env["BROKER_CONSOLE_SCOPES"] = "openid, profile broker:admin"
		env["BROKER_CONSOLE_AUDIENCE"] = "https://broker.partner.example"
		c, err := config.Parse(nil, getenv(env))
		if err != nil {
			t.Fatal(err)
		}
		if c.ConsoleClientID != "broker-console" || c.PublicURL != "https://broker.partner.example/ops" || c.ConsoleAudience != "https://broker.partner.example" {
			t.Errorf("parsed client %q, public URL %q, audience %q", c.ConsoleClientID, c.PublicURL, c.ConsoleAudience)
		}
		if want := []string{"openid", "profile", "broker:admin"}; !slices.Equal(c.ConsoleScopes, want) {
			t.Errorf("ConsoleScopes = %q, want %q", c.ConsoleScopes, want)
		}
	})
	for _, tc := range []struct {
		name, want string
		env        map[string]string
	}{
		{"PublicURLNotHTTP", "BROKER_PUBLIC_URL: not an http(s) URL", map[string]string{"BROKER_PUBLIC_URL": "broker.example"}},
		{"PublicURLQuery", "BROKER_PUBLIC_URL: not an http(s) URL without query", map[string]string{"BROKER_PUBLIC_URL": "https://broker.example/?a=b"}},
		{"IssuerNotURL", "BROKER_CONSOLE_CLIENT_ID: the console finds the authorization server", map[string]string{
			"BROKER_CONSOLE_CLIENT_ID": "broker-console", "BROKER_JWT_ISSUER": "partner"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			if _, err := config.Parse(nil, getenv(env)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want %q", err, tc.want)
			}
		})
	}
}
