package auth_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// vendorToken is an access token shaped as one vendor's authorization server
// issues it, with the principal the vendor's profile reads from it.
type vendorToken struct {
	name     string
	claims   func(now time.Time) jwt.MapClaims
	profile  string   // the vendor's profile
	accepted []string // every profile that accepts the token, the vendor's included
	want     auth.Principal
}

// vendorTokens are real-shaped access tokens of each vendor, signed for
// testIssuer and testAudience (Cognito's carry no aud).
var vendorTokens = []vendorToken{
	{
		name: "RFC9068", profile: "rfc9068", accepted: []string{"rfc9068", "auth0"},
		claims: func(now time.Time) jwt.MapClaims {
			return jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "user-1", "client_id": "alexa-client",
				"scope": "broker:tokens", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1"}
		},
		want: auth.Principal{Subject: "user-1", ClientID: "alexa-client", Scopes: []string{"broker:tokens"}},
	},
	{
		// A Cognito user pool's access token: token_use, client_id, username,
		// cognito:groups, and no aud.
		name: "CognitoUser", profile: "cognito", accepted: []string{"cognito"},
		claims: func(now time.Time) jwt.MapClaims {
			return jwt.MapClaims{"sub": "8c1e5a0e-31a2-4f0b-9e0c-3b1f1e6f2a11", "cognito:groups": []string{"parents"},
				"iss": testIssuer, "version": 2, "client_id": "alexa-client", "origin_jti": "5e1e7a2b", "event_id": "0f6c2d7e",
				"token_use": "access", "scope": "openid profile broker-api/tokens", "auth_time": now.Add(-time.Minute).Unix(),
				"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "c0d1", "username": "jane"}
		},
		want: auth.Principal{Subject: "8c1e5a0e-31a2-4f0b-9e0c-3b1f1e6f2a11", ClientID: "alexa-client",
			Scopes: []string{"openid", "profile", "broker-api/tokens"}},
	},
	{
		// An Auth0 machine-to-machine token: azp, gty, sub CLIENT@clients, and
		// RBAC permissions beside scope.
		name: "Auth0ClientCredentials", profile: "auth0", accepted: []string{"auth0", "keycloak", "entra"},
		claims: func(now time.Time) jwt.MapClaims {
			return jwt.MapClaims{"iss": testIssuer, "sub": "companion@clients", "aud": testAudience,
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": "read:stats", "gty": "client-credentials",
				"azp": "companion", "permissions": []string{"broker:tokens", "broker:admin"}}
		},
		want: auth.Principal{Subject: "companion@clients", ClientID: "companion", Scopes: []string{"read:stats", "broker:tokens", "broker:admin"}},
	},
	{
		// An Okta custom authorization server's token: cid, uid, scp as a list.
		// Its scope claim (which Okta does not send) would grant nothing.
		name: "Okta", profile: "okta", accepted: []string{"okta"},
		claims: func(now time.Time) jwt.MapClaims {
			return jwt.MapClaims{"ver": 1, "jti": "AT.x1", "iss": testIssuer, "aud": testAudience, "iat": now.Unix(),
				"exp": now.Add(time.Hour).Unix(), "cid": "alexa-client", "uid": "00u1abcd", "scp": []string{"openid", "broker:tokens"},
				"auth_time": now.Unix(), "sub": "jane@partner.example", "scope": "broker:admin"}
		},
		want: auth.Principal{Subject: "jane@partner.example", ClientID: "alexa-client", Scopes: []string{"openid", "broker:tokens"}},
	},
	{
		// A Keycloak token: azp, realm_access and resource_access roles (which
		// grant nothing), scope as a string.
		name: "Keycloak", profile: "keycloak", accepted: []string{"auth0", "keycloak", "entra"},
		claims: func(now time.Time) jwt.MapClaims {
			return jwt.MapClaims{"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": "kc-1", "iss": testIssuer,
				"aud": []string{testAudience, "account"}, "sub": "f3b1c7a0-0000-4000-8000-000000000001", "typ": "Bearer",
				"azp": "alexa-client", "session_state": "s1", "acr": "1",
				"realm_access":    map[string]any{"roles": []string{"offline_access", "broker:admin"}},
				"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account"}}},
				"scope":           "openid email broker:tokens", "sid": "s1", "email_verified": true, "preferred_username": "jane"}
		},
		want: auth.Principal{Subject: "f3b1c7a0-0000-4000-8000-000000000001", ClientID: "alexa-client",
			Scopes: []string{"openid", "email", "broker:tokens"}},
	},
	{
		// An Entra ID v1.0 token: appid (no azp), scp as a string, roles.
		name: "EntraV1", profile: "entra", accepted: []string{"entra"},
		claims: func(now time.Time) jwt.MapClaims {
			return jwt.MapClaims{"aud": testAudience, "iss": testIssuer, "iat": now.Unix(), "nbf": now.Unix(),
				"exp": now.Add(time.Hour).Unix(), "aio": "E2Zg", "appid": "alexa-client", "appidacr": "1",
				"oid": "6a1f", "rh": "0.AR", "scp": "Broker.Tokens User.Read", "roles": []string{"Broker.Admin"},
				"sub": "xQ3f", "tid": "72f9", "uti": "u1", "ver": "1.0"}
		},
		want: auth.Principal{Subject: "xQ3f", ClientID: "alexa-client", Scopes: []string{"Broker.Tokens", "User.Read", "Broker.Admin"}},
	},
	{
		// An Entra ID v2.0 token: azp, scp and roles.
		name: "EntraV2", profile: "entra", accepted: []string{"auth0", "keycloak", "entra"},
		claims: func(now time.Time) jwt.MapClaims {
			return jwt.MapClaims{"aud": testAudience, "iss": testIssuer, "iat": now.Unix(), "nbf": now.Unix(),
				"exp": now.Add(time.Hour).Unix(), "aio": "E2Zg", "azp": "alexa-client", "azpacr": "0", "name": "Jane",
				"oid": "6a1f", "preferred_username": "jane@partner.example", "rh": "0.AR", "roles": []string{"Broker.Admin"},
				"scp": "Broker.Tokens", "sub": "xQ3f", "tid": "72f9", "uti": "u1", "ver": "2.0"}
		},
		want: auth.Principal{Subject: "xQ3f", ClientID: "alexa-client", Scopes: []string{"Broker.Tokens", "Broker.Admin"}},
	},
}

// profileVerifier returns an HS256 verifier of profile on testNow; Cognito's
// gets the client list its tokens need instead of an audience.
func profileVerifier(tb testing.TB, profile string, logger *slog.Logger) *auth.Verifier {
	tb.Helper()
	cfg := auth.Config{HS256Secret: testSecret, Now: func() time.Time { return testNow }, Profile: profile, Logger: logger}
	if profile == "cognito" {
		cfg.Clients = []string{"alexa-client", "companion"}
	}
	return newVerifier(tb, cfg)
}

// signHS256 signs claims with testSecret.
func signHS256(tb testing.TB, claims jwt.MapClaims) string {
	tb.Helper()
	return sign(tb, jwt.SigningMethodHS256, []byte(testSecret.Reveal()), claims, nil)
}

// TestVerifier_Profiles presents every vendor's token to a verifier of every
// profile: it is accepted, with the vendor's principal, under its own profile,
// and refused as EUNAUTHENTICATED under every profile whose claims it does not
// fit.
func TestVerifier_Profiles(t *testing.T) {
	verifiers := map[string]*auth.Verifier{}
	for _, name := range auth.ProfileNames() {
		verifiers[name] = profileVerifier(t, name, nil)
	}
	for _, vt := range vendorTokens {
		raw := signHS256(t, vt.claims(testNow))
		for _, profile := range auth.ProfileNames() {
			t.Run(vt.name+"/"+profile, func(t *testing.T) {
				p, err := verifiers[profile].Verify(context.Background(), raw)
				if !slices.Contains(vt.accepted, profile) {
					checkError(t, err, tokens.EUNAUTHENTICATED, "token", raw)
					return
				}
				if err != nil {
					t.Fatalf("Verify under %s: %v", profile, err)
				}
				if profile != vt.profile {
					return
				}
				if p.Subject != vt.want.Subject || p.ClientID != vt.want.ClientID || !slices.Equal(p.Scopes, vt.want.Scopes) {
					t.Errorf("principal = %+v, want %+v", p, vt.want)
				}
			})
		}
	}
}

// TestVerifier_ProfileRules covers what each profile checks beyond the claims'
// places: Cognito's token_use and client list, aud where required, the client
// list, a client claim of the wrong type, the overrides, and that claims other
// than the profile's grant nothing.
func TestVerifier_ProfileRules(t *testing.T) {
	base := func(profile string) jwt.MapClaims {
		for _, vt := range vendorTokens {
			if vt.profile == profile {
				return vt.claims(testNow)
			}
		}
		t.Fatalf("no vendor token of %s", profile)
		return nil
	}
	for _, tc := range []struct {
		name   string
		cfg    auth.Config
		claims jwt.MapClaims
		reason string   // part of the refusal; "" for success
		scopes []string // on success
		client string   // on success, when not alexa-client
	}{
		{name: "CognitoIDToken", cfg: auth.Config{Profile: "cognito", Clients: []string{"alexa-client"}},
			claims: with(base("cognito"), "token_use", "id"), reason: "not an access token"},
		{name: "CognitoNoTokenUse", cfg: auth.Config{Profile: "cognito", Clients: []string{"alexa-client"}},
			claims: without(base("cognito"), "token_use"), reason: "no token_use"},
		{name: "CognitoTokenUseNotString", cfg: auth.Config{Profile: "cognito", Clients: []string{"alexa-client"}},
			claims: with(base("cognito"), "token_use", []string{"access"}), reason: "token_use is not a string"},
		{name: "CognitoClientNotListed", cfg: auth.Config{Profile: "cognito", Clients: []string{"another-client"}},
			claims: base("cognito"), reason: "client is not accepted"},
		{name: "CognitoAudienceWhenSet", cfg: auth.Config{Profile: "cognito", Clients: []string{"alexa-client"}, Audience: testAudience},
			claims: base("cognito"), reason: "no audience"},
		{name: "CognitoAudienceMatches", cfg: auth.Config{Profile: "cognito", Clients: []string{"alexa-client"}, Audience: testAudience},
			claims: with(base("cognito"), "aud", testAudience), scopes: []string{"openid", "profile", "broker-api/tokens"}},
		{name: "OktaNoAudience", cfg: auth.Config{Profile: "okta"}, claims: without(base("okta"), "aud"), reason: "no audience"},
		{name: "OktaClientNotString", cfg: auth.Config{Profile: "okta"}, claims: with(base("okta"), "cid", 42), reason: "cid is not a string"},
		{name: "OktaEmptyClient", cfg: auth.Config{Profile: "okta"}, claims: with(base("okta"), "cid", ""), reason: "no client claim (cid)"},
		{name: "OktaScopeGrantsNothing", cfg: auth.Config{Profile: "okta"},
			claims: with(base("okta"), "scp", []string{}), scopes: nil},
		{name: "OktaScpNotList", cfg: auth.Config{Profile: "okta"}, claims: with(base("okta"), "scp", map[string]any{"a": 1}),
			reason: "scp is neither a string nor a list"},
		{name: "KeycloakRolesGrantNothing", cfg: auth.Config{Profile: "keycloak"},
			claims: without(base("keycloak"), "scope"), scopes: nil},
		{name: "KeycloakNoAzp", cfg: auth.Config{Profile: "keycloak"}, claims: with(without(base("keycloak"), "azp"), "client_id", "alexa-client"),
			reason: "no client claim (azp)"},
		{name: "Auth0FallsBackToClientID", cfg: auth.Config{Profile: "auth0"},
			claims: with(without(base("auth0"), "azp"), "client_id", "alexa-client"), scopes: []string{"read:stats", "broker:tokens", "broker:admin"}},
		{name: "Auth0AzpWins", cfg: auth.Config{Profile: "auth0"},
			claims: with(base("auth0"), "client_id", "other"), scopes: []string{"read:stats", "broker:tokens", "broker:admin"}, client: "companion"},
		{name: "EntraV1AppID", cfg: auth.Config{Profile: "entra"}, claims: base("entra"), scopes: []string{"Broker.Tokens", "User.Read", "Broker.Admin"}},
		{name: "EntraScopeGrantsNothing", cfg: auth.Config{Profile: "entra"},
			claims: with(without(without(base("entra"), "scp"), "roles"), "scope", "broker:admin"), scopes: nil},
		{name: "ClientClaimOverride", cfg: auth.Config{Profile: "okta", ClientClaim: "uid"}, claims: base("okta"),
			scopes: []string{"openid", "broker:tokens"}, client: "00u1abcd"},
		{name: "ClientClaimOverrideReplaces", cfg: auth.Config{Profile: "auth0", ClientClaim: "client_id"}, claims: base("auth0"),
			reason: "no client claim (client_id)"},
		{name: "ScopeClaimsOverride", cfg: auth.Config{Profile: "keycloak", ScopeClaims: []string{"groups", "scope"}},
			claims: with(base("keycloak"), "groups", []string{"broker:admin"}), scopes: []string{"broker:admin", "openid", "email", "broker:tokens"}},
		{name: "ScopeClaimsOverrideReplaces", cfg: auth.Config{Profile: "auth0", ScopeClaims: []string{"scope"}}, claims: base("auth0"),
			scopes: []string{"read:stats"}, client: "companion"},
		{name: "ClientListOtherProfile", cfg: auth.Config{Profile: "rfc9068", Clients: []string{"alexa-client"}},
			claims: with(base("rfc9068"), "client_id", "stranger"), reason: "client is not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			cfg := tc.cfg
			cfg.HS256Secret, cfg.Now = testSecret, func() time.Time { return testNow }
			cfg.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			v := newVerifier(t, cfg)
			raw := signHS256(t, tc.claims)
			p, err := v.Verify(context.Background(), raw)
			if tc.reason != "" {
				checkError(t, err, tokens.EUNAUTHENTICATED, tc.reason, raw)
				checkRefusalLog(t, logs.String(), tc.reason, raw)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if want := cmp.Or(tc.client, "alexa-client"); p.ClientID != want {
				t.Errorf("ClientID = %q, want %q", p.ClientID, want)
			}
			if !slices.Equal(p.Scopes, tc.scopes) {
				t.Errorf("Scopes = %q, want %q", p.Scopes, tc.scopes)
			}
		})
	}
}

// TestVerifier_RefusalLog: a refused token's log line names the claim that is
// missing, and holds no part of the token.
func TestVerifier_RefusalLog(t *testing.T) {
	var logs bytes.Buffer
	v := profileVerifier(t, "keycloak", slog.New(slog.NewJSONHandler(&logs, nil)))
	claims := vendorTokens[4].claims(testNow)
	delete(claims, "azp")
	raw := signHS256(t, claims)
	if _, err := v.Verify(context.Background(), raw); err == nil {
		t.Fatal("Verify of a Keycloak token without azp: nil error")
	}
	var line struct{ Msg, Reason, Claim, Profile string }
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line.Msg != "auth: bearer token refused" || line.Claim != "azp" || line.Profile != "keycloak" || !strings.Contains(line.Reason, "azp") {
		t.Errorf("log line = %+v, want the refusal naming claim azp under keycloak", line)
	}
	checkRefusalLog(t, logs.String(), "no client claim", raw)
}

// checkRefusalLog fails the test unless logs hold a refusal with reason and
// nothing of the token raw.
func checkRefusalLog(tb testing.TB, logs, reason, raw string) {
	tb.Helper()
	if !strings.Contains(logs, "bearer token refused") || !strings.Contains(logs, reason) {
		tb.Errorf("logs %q lack the refusal %q", logs, reason)
	}
	for _, part := range strings.Split(raw, ".") {
		if len(part) >= 8 && strings.Contains(logs, part) {
			tb.Errorf("logs %q contain a part of the token", logs)
		}
	}
}

func TestNewVerifier_Profiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  auth.Config
		want string // part of the error message
	}{
		{"UnknownProfile", auth.Config{Profile: "google", Audience: testAudience}, "unknown profile"},
		{"CognitoWithoutClients", auth.Config{Profile: "cognito"}, "list of accepted clients"},
		{"OktaWithoutAudience", auth.Config{Profile: "okta"}, "no audience"},
		{"EmptyClient", auth.Config{Audience: testAudience, Clients: []string{"a", ""}}, "empty client"},
		{"ClientClaimRegistered", auth.Config{Audience: testAudience, ClientClaim: "sub"}, "registered claim"},
		{"ClientClaimSpace", auth.Config{Audience: testAudience, ClientClaim: "my claim"}, "white space"},
		{"ScopeClaimRegistered", auth.Config{Audience: testAudience, ScopeClaims: []string{"scope", "exp"}}, "registered claim"},
		{"ScopeClaimEmpty", auth.Config{Audience: testAudience, ScopeClaims: []string{""}}, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Issuer, tc.cfg.HS256Secret = testIssuer, testSecret
			v, err := auth.NewVerifier(context.Background(), tc.cfg)
			if err == nil {
				_ = v.Close()
				t.Fatalf("NewVerifier: nil error, want one about %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewVerifier: %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLookupProfile(t *testing.T) {
	if got, want := auth.ProfileNames(), []string{"rfc9068", "cognito", "auth0", "okta", "keycloak", "entra"}; !slices.Equal(got, want) {
		t.Errorf("ProfileNames() = %q, want %q", got, want)
	}
	p, ok := auth.LookupProfile("")
	if !ok || p.Name != auth.DefaultProfile {
		t.Errorf("LookupProfile(\"\") = %+v, %v; want the default", p, ok)
	}
	p.ClientClaims[0] = "changed"
	if again, _ := auth.LookupProfile(""); again.ClientClaims[0] != "client_id" {
		t.Error("a caller's change to a looked-up profile changed the table")
	}
	if _, ok := auth.LookupProfile("Okta"); ok {
		t.Error("LookupProfile matched a name in another case")
	}
}

// with returns c with claim set to v.
func with(c jwt.MapClaims, claim string, v any) jwt.MapClaims {
	c[claim] = v
	return c
}

// without returns c without claim.
func without(c jwt.MapClaims, claim string) jwt.MapClaims {
	delete(c, claim)
	return c
}
