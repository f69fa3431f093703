package config_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/config"
)

// Secret values that must never appear in any output.
const (
	clientSecret = "lwa-client-secret-value-1234"
	hsSecret     = "hs256-secret-value-0123456789abcdef"
)

var encryptionKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

// validEnv is a complete, valid configuration.
func validEnv() map[string]string {
	return map[string]string{
		"BROKER_LWA_CLIENT_ID":     "amzn1.application-oa2-client.test",
		"BROKER_LWA_CLIENT_SECRET": clientSecret,
		"BROKER_ALEXA_CLIENT_IDS":  "alexa-skill-client, other",
		"BROKER_JWT_ISSUER":        "https://auth.partner.example",
		"BROKER_JWT_AUDIENCE":      "broker",
		"BROKER_JWT_HS256_SECRET":  hsSecret,
		"BROKER_ENCRYPTION_KEY":    encryptionKey,
	}
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestParse_Defaults(t *testing.T) {
	c, err := config.Parse(nil, getenv(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"GRPCAddr", c.GRPCAddr, "127.0.0.1:9090"},
		{"HTTPAddr", c.HTTPAddr, "127.0.0.1:8080"},
		{"StoreKind", c.StoreKind, "bolt"},
		{"StoreTarget", c.StoreTarget, "./data/broker.db"},
		{"LWATokenURL", c.LWATokenURL, "https://api.amazon.com/auth/o2/token"},
		{"AlexaAPIURL", c.AlexaAPIURL, "https://api.amazonalexa.com"},
		{"AlexaClientIDs", strings.Join(c.AlexaClientIDs, "|"), "alexa-skill-client|other"},
		{"RefreshAhead", c.RefreshAhead.String(), (5 * time.Minute).String()},
		{"BackgroundRefresh", c.BackgroundRefresh.String(), (24 * time.Hour).String()},
		{"JWTProfile", c.JWTProfile, "rfc9068"},
		{"JWTClientClaim", c.JWTClientClaim, ""},
		{"JWTScopeClaims", strings.Join(c.JWTScopeClaims, "|"), ""},
		{"JWTClients", strings.Join(c.JWTClients, "|"), ""},
		{"JWTJWKSRefresh", c.JWTJWKSRefresh.String(), (5 * time.Minute).String()},
		{"ScopeTokens", c.ScopeTokens, "broker:tokens"},
		{"ScopeProfiles", c.ScopeProfiles, "broker:profiles"},
		{"ScopeAdmin", c.ScopeAdmin, "broker:admin"},
		{"ScopeEvents", c.ScopeEvents, "broker:events"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
		}
	}
	if c.DynamoDBCreateTable {
		t.Error("DynamoDBCreateTable defaults to true, want false")
	}
}

func TestParse_FlagBeatsEnvironment(t *testing.T) {
	env := validEnv()
	env["BROKER_GRPC_ADDR"] = "127.0.0.1:1111"
	env["BROKER_STORE"] = "dynamodb:broker-table"
	c, err := config.Parse([]string{"--grpc-addr", "127.0.0.1:2222"}, getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.GRPCAddr, "127.0.0.1:2222"; got != want {
		t.Errorf("GRPCAddr = %q, want %q", got, want)
	}
	if c.StoreKind != "dynamodb" || c.StoreTarget != "broker-table" {
		t.Errorf("store = %q %q, want dynamodb broker-table", c.StoreKind, c.StoreTarget)
	}
}

// TestParse_Invalid checks that each kind of bad setting fails, naming the
// setting, and that no secret value leaks into the message.
func TestParse_Invalid(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		env   map[string]string // merged over validEnv; "" deletes
		args  []string
		names string // the setting the error must name
	}{
		{"MissingClientID", map[string]string{"BROKER_LWA_CLIENT_ID": ""}, nil, "BROKER_LWA_CLIENT_ID"},
		{"MissingClientSecret", map[string]string{"BROKER_LWA_CLIENT_SECRET": ""}, nil, "BROKER_LWA_CLIENT_SECRET"},
		{"MissingAlexaClientIDs", map[string]string{"BROKER_ALEXA_CLIENT_IDS": " , "}, nil, "BROKER_ALEXA_CLIENT_IDS"},
		{"MissingIssuer", map[string]string{"BROKER_JWT_ISSUER": ""}, nil, "BROKER_JWT_ISSUER"},
		{"MissingAudience", map[string]string{"BROKER_JWT_AUDIENCE": ""}, nil, "BROKER_JWT_AUDIENCE"},
		{"NoKeySource", map[string]string{"BROKER_JWT_HS256_SECRET": ""}, nil, "BROKER_JWT_JWKS_URL"},
		{"TwoKeySources", map[string]string{"BROKER_JWT_PUBLIC_KEY_FILE": keyFile}, nil, "BROKER_JWT_JWKS_URL"},
		{"MissingKeyFile", map[string]string{"BROKER_JWT_HS256_SECRET": "", "BROKER_JWT_PUBLIC_KEY_FILE": "/nonexistent.pem"}, nil, "BROKER_JWT_PUBLIC_KEY_FILE"},
		{"BadJWKSURL", map[string]string{"BROKER_JWT_HS256_SECRET": "", "BROKER_JWT_JWKS_URL": "ftp://x"}, nil, "BROKER_JWT_JWKS_URL"},
		{"ShortHS256Secret", map[string]string{"BROKER_JWT_HS256_SECRET": "short-secret"}, nil, "BROKER_JWT_HS256_SECRET"},
		{"MissingEncryptionKey", map[string]string{"BROKER_ENCRYPTION_KEY": ""}, nil, "BROKER_ENCRYPTION_KEY"},
		{"ShortEncryptionKey", map[string]string{"BROKER_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))}, nil, "BROKER_ENCRYPTION_KEY"},
		{"NotBase64EncryptionKey", map[string]string{"BROKER_ENCRYPTION_KEY": "not base64 at all!"}, nil, "BROKER_ENCRYPTION_KEY"},
		{"EmptyKMSKey", map[string]string{"BROKER_ENCRYPTION_KEY": "kms:"}, nil, "BROKER_ENCRYPTION_KEY"},
		{"BadGRPCAddr", map[string]string{"BROKER_GRPC_ADDR": "localhost"}, nil, "BROKER_GRPC_ADDR"},
		{"BadHTTPPort", map[string]string{"BROKER_HTTP_ADDR": "127.0.0.1:99999"}, nil, "BROKER_HTTP_ADDR"},
		{"SameAddrs", map[string]string{"BROKER_HTTP_ADDR": "127.0.0.1:9090"}, nil, "BROKER_HTTP_ADDR"},
		{"BadStore", map[string]string{"BROKER_STORE": "postgres:x"}, nil, "BROKER_STORE"},
		{"EmptyBoltPath", map[string]string{"BROKER_STORE": "bolt:"}, nil, "BROKER_STORE"},
		{"BadTableName", map[string]string{"BROKER_STORE": "dynamodb:a"}, nil, "BROKER_STORE"},
		{"BadDynamoEndpoint", map[string]string{"BROKER_DYNAMODB_ENDPOINT": "localhost:8000"}, nil, "BROKER_DYNAMODB_ENDPOINT"},
		{"BadKMSEndpoint", map[string]string{"BROKER_KMS_ENDPOINT": "localhost:4566"}, nil, "BROKER_KMS_ENDPOINT"},
		{"BadCreateTable", map[string]string{"BROKER_DYNAMODB_CREATE_TABLE": "yes please"}, nil, "BROKER_DYNAMODB_CREATE_TABLE"},
		{"BadClockOrder", map[string]string{"BROKER_DYNAMODB_CLOCK_ORDER": "soon"}, nil, "BROKER_DYNAMODB_CLOCK_ORDER"},
		{"BadTokenURL", map[string]string{"BROKER_LWA_TOKEN_URL": "api.amazon.com"}, nil, "BROKER_LWA_TOKEN_URL"},
		{"BadAlexaURL", map[string]string{"BROKER_ALEXA_API_URL": "::"}, nil, "BROKER_ALEXA_API_URL"},
		{"BadRefreshAhead", map[string]string{"BROKER_REFRESH_AHEAD": "soon"}, nil, "BROKER_REFRESH_AHEAD"},
		{"ZeroRefreshAhead", map[string]string{"BROKER_REFRESH_AHEAD": "0s"}, nil, "BROKER_REFRESH_AHEAD"},
		{"NegativeBackgroundRefresh", map[string]string{"BROKER_BACKGROUND_REFRESH": "-1h"}, nil, "BROKER_BACKGROUND_REFRESH"},
		{"BadRegion", map[string]string{"BROKER_ALEXA_REGION": "Mars"}, nil, "BROKER_ALEXA_REGION"},
		{"BadReportDeadline", map[string]string{"BROKER_REPORT_DEADLINE": "0s"}, nil, "BROKER_REPORT_DEADLINE"},
		{"BadReportRetention", map[string]string{"BROKER_REPORT_RETENTION": "a week"}, nil, "BROKER_REPORT_RETENTION"},
		{"BadEventRetention", map[string]string{"BROKER_EVENT_RETENTION": "90 days"}, nil, "BROKER_EVENT_RETENTION"},
		{"ZeroEventRetention", map[string]string{"BROKER_EVENT_RETENTION": "0s"}, nil, "BROKER_EVENT_RETENTION"},
		{"BadLogLevel", map[string]string{"BROKER_LOG_LEVEL": "loud"}, nil, "BROKER_LOG_LEVEL"},
		{"UnknownProfile", map[string]string{"BROKER_JWT_PROFILE": "google"}, nil, "BROKER_JWT_PROFILE"},
		{"ProfileInCaps", map[string]string{"BROKER_JWT_PROFILE": "Okta"}, nil, "BROKER_JWT_PROFILE"},
		{"CognitoWithoutClients", map[string]string{"BROKER_JWT_PROFILE": "cognito", "BROKER_JWT_AUDIENCE": ""}, nil, "BROKER_JWT_CLIENTS"},
		{"CognitoWithAudienceWithoutClients", map[string]string{"BROKER_JWT_PROFILE": "cognito"}, nil, "BROKER_JWT_CLIENTS"},
		{"OktaWithoutAudience", map[string]string{"BROKER_JWT_PROFILE": "okta", "BROKER_JWT_AUDIENCE": ""}, nil, "BROKER_JWT_AUDIENCE"},
		{"ClientsWithoutAlexa", map[string]string{"BROKER_JWT_CLIENTS": "companion,alexa-skill-client"}, nil, "BROKER_JWT_CLIENTS"},
		{"ClientClaimRegistered", map[string]string{"BROKER_JWT_CLIENT_CLAIM": "sub"}, nil, "BROKER_JWT_CLIENT_CLAIM"},
		{"ClientClaimSpaces", map[string]string{"BROKER_JWT_CLIENT_CLAIM": "client id"}, nil, "BROKER_JWT_CLIENT_CLAIM"},
		{"ScopeClaimRegistered", map[string]string{"BROKER_JWT_SCOPE_CLAIMS": "scp,exp"}, nil, "BROKER_JWT_SCOPE_CLAIMS"},
		{"JWKSRefreshTooShort", map[string]string{"BROKER_JWT_JWKS_REFRESH": "1s"}, nil, "BROKER_JWT_JWKS_REFRESH"},
		{"JWKSRefreshTooLong", map[string]string{"BROKER_JWT_JWKS_REFRESH": "48h"}, nil, "BROKER_JWT_JWKS_REFRESH"},
		{"ScopeWithSpace", map[string]string{"BROKER_SCOPE_TOKENS": "broker tokens"}, nil, "BROKER_SCOPE_TOKENS"},
		{"ScopeTwice", map[string]string{"BROKER_SCOPE_ADMIN": "broker:tokens"}, nil, "BROKER_SCOPE_ADMIN"},
		{"ScopeTwiceByFlag", nil, []string{"--scope-events", "Broker.Admin", "--scope-admin", "Broker.Admin"}, "--scope-events: must differ"},
		{"BadUserRate", map[string]string{"BROKER_AUTHORIZE_RATE_USER": "10 a minute"}, nil, "BROKER_AUTHORIZE_RATE_USER"},
		{"ZeroPeriodUserRate", map[string]string{"BROKER_AUTHORIZE_RATE_USER": "10/0s"}, nil, "BROKER_AUTHORIZE_RATE_USER"},
		{"NegativeClientRate", map[string]string{"BROKER_AUTHORIZE_RATE_CLIENT": "-5/1s"}, nil, "BROKER_AUTHORIZE_RATE_CLIENT"},
		{"ClientRateWithoutPeriod", map[string]string{"BROKER_AUTHORIZE_RATE_CLIENT": "100"}, nil, "BROKER_AUTHORIZE_RATE_CLIENT"},
		{"BadFlagValue", nil, []string{"--refresh-ahead", "soon"}, "--refresh-ahead"},
		{"UnknownFlag", nil, []string{"--no-such-flag"}, "no-such-flag"},
		{"StrayArgument", nil, []string{"extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := config.Parse(tt.args, getenv(env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.names) {
				t.Errorf("error %q does not name %s", msg, tt.names)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			for _, secret := range []string{clientSecret, hsSecret, encryptionKey, "short-secret", "sixteen-byte-key"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret", msg)
				}
			}
		})
	}
}

// TestParse_Profiles: each vendor's usual settings are accepted as a partner
// writes them.
func TestParse_Profiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string // merged over validEnv; "" deletes
		check func(t *testing.T, c config.Config)
	}{
		{"Cognito", map[string]string{"BROKER_JWT_PROFILE": "cognito", "BROKER_JWT_AUDIENCE": "",
			"BROKER_JWT_CLIENTS": "alexa-skill-client, other ,companion", "BROKER_SCOPE_TOKENS": "broker-api/tokens"},
			func(t *testing.T, c config.Config) {
				if got, want := strings.Join(c.JWTClients, "|"), "alexa-skill-client|other|companion"; got != want {
					t.Errorf("JWTClients = %q, want %q", got, want)
				}
				if c.ScopeTokens != "broker-api/tokens" {
					t.Errorf("ScopeTokens = %q", c.ScopeTokens)
				}
			}},
		{"Entra", map[string]string{"BROKER_JWT_PROFILE": "entra", "BROKER_SCOPE_TOKENS": "Broker.Tokens",
			"BROKER_SCOPE_PROFILES": "Broker.Profiles", "BROKER_SCOPE_ADMIN": "Broker.Admin", "BROKER_SCOPE_EVENTS": "Broker.Events"},
			func(t *testing.T, c config.Config) {
				if c.JWTProfile != "entra" || c.ScopeAdmin != "Broker.Admin" || c.ScopeEvents != "Broker.Events" {
					t.Errorf("config = %q %q %q", c.JWTProfile, c.ScopeAdmin, c.ScopeEvents)
				}
			}},
		{"Overrides", map[string]string{"BROKER_JWT_PROFILE": "okta", "BROKER_JWT_CLIENT_CLAIM": "client_id",
			"BROKER_JWT_SCOPE_CLAIMS": "scp, groups", "BROKER_JWT_JWKS_REFRESH": "1m"},
			func(t *testing.T, c config.Config) {
				if c.JWTClientClaim != "client_id" || strings.Join(c.JWTScopeClaims, "|") != "scp|groups" || c.JWTJWKSRefresh != time.Minute {
					t.Errorf("config = %q %q %v", c.JWTClientClaim, c.JWTScopeClaims, c.JWTJWKSRefresh)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := config.Parse(nil, getenv(env))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestConfig_KMSKeyID(t *testing.T) {
	for _, tc := range []struct {
		name, key, wantID string
		wantOK            bool
	}{
		{"KMS", "kms:alias/broker", "alias/broker", true},
		{"KMSARN", "kms:arn:aws:kms:eu-west-1:111122223333:key/1234", "arn:aws:kms:eu-west-1:111122223333:key/1234", true},
		{"Static", encryptionKey, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			env["BROKER_ENCRYPTION_KEY"] = tc.key
			c, err := config.Parse(nil, getenv(env))
			if err != nil {
				t.Fatal(err)
			}
			if id, ok := c.KMSKeyID(); id != tc.wantID || ok != tc.wantOK {
				t.Errorf("KMSKeyID() = %q, %v; want %q, %v", id, ok, tc.wantID, tc.wantOK)
			}
		})
	}
}

func TestParse_ReportsEveryProblem(t *testing.T) {
	_, err := config.Parse(nil, getenv(map[string]string{}))
	if err == nil {
		t.Fatal("Parse of an empty environment succeeded")
	}
	for _, name := range []string{"BROKER_LWA_CLIENT_ID", "BROKER_LWA_CLIENT_SECRET", "BROKER_ALEXA_CLIENT_IDS",
		"BROKER_JWT_ISSUER", "BROKER_JWT_AUDIENCE", "BROKER_ENCRYPTION_KEY"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}

func TestUsage(t *testing.T) {
	if _, err := config.Parse([]string{"--help"}, getenv(validEnv())); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp", err)
	}
	var out bytes.Buffer
	config.Usage(&out, "broker serve")
	help := out.String()
	for _, want := range []string{"--grpc-addr, BROKER_GRPC_ADDR", `"127.0.0.1:9090"`, "BROKER_ENCRYPTION_KEY", `"bolt:./data/broker.db"`, `"24h"`} {
		if !strings.Contains(help, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestNames(t *testing.T) {
	var out bytes.Buffer
	config.Usage(&out, "broker serve")
	names := config.Names()
	if got, want := len(names), strings.Count(out.String(), ", BROKER_"); got != want {
		t.Errorf("Names() has %d names, usage lists %d settings", got, want)
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "BROKER_") || !strings.Contains(out.String(), ", "+name+"\n") {
			t.Errorf("Names() has %q, which usage does not list", name)
		}
	}
}

func TestParse_AuthorizeRates(t *testing.T) {
	for _, tt := range []struct {
		name, value string
		want        config.Rate
	}{
		{"PerMinute", "10/1m", config.Rate{Count: 10, Per: time.Minute}},
		{"PerSecond", " 50/1s ", config.Rate{Count: 50, Per: time.Second}},
		{"Off", "0", config.Rate{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := validEnv()
			env["BROKER_AUTHORIZE_RATE_USER"], env["BROKER_AUTHORIZE_RATE_CLIENT"] = tt.value, tt.value
			c, err := config.Parse(nil, getenv(env))
			if err != nil {
				t.Fatal(err)
			}
			if c.AuthorizeRateUser != tt.want || c.AuthorizeRateClient != tt.want {
				t.Errorf("rates of %q = %+v and %+v, want %+v", tt.value, c.AuthorizeRateUser, c.AuthorizeRateClient, tt.want)
			}
		})
	}
}
