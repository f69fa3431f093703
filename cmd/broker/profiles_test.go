package main

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// companion is the client id of the companion backend in these tests.
const companion = "companion-backend"

// vendor is an authorization server a partner runs: the settings the partner
// writes for it, and the claims of its two kinds of access token, shaped as the
// vendor issues them.
type vendor struct {
	name     string
	profile  string
	settings map[string]string // beyond the harness's; "" unsets
	// user returns the claims of the token Alexa holds for user, issued to
	// client; clientToken those of the companion backend's client-credentials
	// token that grants the tokens right.
	user        func(h *harness, user, client string) jwt.MapClaims
	clientToken func(h *harness) jwt.MapClaims
	// wrong is a profile whose broker refuses both tokens.
	wrong string
}

// stamp adds iss, exp and iat for h's authorization server, which keeps real
// time, to c.
func stamp(h *harness, c jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c["iss"], c["exp"], c["iat"] = h.sims.Auth.Issuer(), now.Add(time.Hour).Unix(), now.Unix()
	return c
}

var vendors = []vendor{
	{
		name: "RFC9068", profile: "rfc9068", wrong: "okta",
		user: func(h *harness, user, client string) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": h.sims.Auth.Audience(), "sub": user, "client_id": client, "jti": "j-" + user})
		},
		clientToken: func(h *harness) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": h.sims.Auth.Audience(), "sub": companion, "client_id": companion, "scope": "broker:tokens"})
		},
	},
	{
		// Cognito access tokens carry no aud; the client list stands in, and
		// custom scopes are RESOURCE_SERVER/NAME.
		name: "Cognito", profile: "cognito", wrong: "rfc9068",
		settings: map[string]string{"BROKER_JWT_AUDIENCE": "", "BROKER_JWT_CLIENTS": alexaClient + "," + companion,
			"BROKER_SCOPE_TOKENS": "broker-api/tokens"},
		user: func(h *harness, user, client string) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"sub": user, "cognito:groups": []string{"parents"}, "version": 2, "client_id": client,
				"origin_jti": "o-" + user, "event_id": "e-" + user, "token_use": "access", "scope": "openid profile",
				"auth_time": time.Now().Unix(), "jti": "j-" + user, "username": "name-" + user})
		},
		clientToken: func(h *harness) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"sub": companion, "version": 2, "client_id": companion, "token_use": "access",
				"scope": "broker-api/tokens", "jti": "j-c"})
		},
	},
	{
		// Auth0: azp, the user's aud list with userinfo, and RBAC permissions
		// on the machine-to-machine token (gty).
		name: "Auth0", profile: "auth0", wrong: "rfc9068",
		user: func(h *harness, user, client string) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"sub": user, "aud": []string{h.sims.Auth.Audience(), h.sims.Auth.Issuer() + "/userinfo"},
				"azp": client, "scope": "openid profile"})
		},
		clientToken: func(h *harness) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"sub": companion + "@clients", "aud": h.sims.Auth.Audience(), "azp": companion,
				"gty": "client-credentials", "scope": "", "permissions": []string{"broker:tokens"}})
		},
	},
	{
		// Okta: cid, uid, and scp as a list.
		name: "Okta", profile: "okta", wrong: "keycloak",
		user: func(h *harness, user, client string) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"ver": 1, "jti": "AT." + user, "aud": h.sims.Auth.Audience(), "cid": client,
				"uid": "00u-" + user, "scp": []string{"openid", "profile"}, "auth_time": time.Now().Unix(), "sub": user})
		},
		clientToken: func(h *harness) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"ver": 1, "jti": "AT.c", "aud": h.sims.Auth.Audience(), "cid": companion,
				"scp": []string{"broker:tokens"}, "sub": companion})
		},
	},
	{
		// Keycloak: azp, realm and resource roles, scope as a string.
		name: "Keycloak", profile: "keycloak", wrong: "okta",
		user: func(h *harness, user, client string) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": []string{h.sims.Auth.Audience(), "account"}, "sub": user, "typ": "Bearer",
				"azp": client, "session_state": "s", "acr": "1", "realm_access": map[string]any{"roles": []string{"offline_access"}},
				"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account"}}},
				"scope":           "openid email", "email_verified": true, "preferred_username": "name-" + user})
		},
		clientToken: func(h *harness) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": h.sims.Auth.Audience(), "sub": "service-account-" + companion, "typ": "Bearer",
				"azp": companion, "clientId": companion, "scope": "broker:tokens"})
		},
	},
	{
		// Entra ID v1.0 tokens: appid; the app's right is an app role.
		name: "EntraV1", profile: "entra", wrong: "okta",
		settings: map[string]string{"BROKER_SCOPE_TOKENS": "Broker.Tokens"},
		user: func(h *harness, user, client string) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": h.sims.Auth.Audience(), "nbf": time.Now().Unix(), "aio": "a", "appid": client,
				"appidacr": "1", "oid": "oid-" + user, "scp": "Broker.Link", "sub": user, "tid": "tenant", "ver": "1.0"})
		},
		clientToken: func(h *harness) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": h.sims.Auth.Audience(), "nbf": time.Now().Unix(), "appid": companion,
				"appidacr": "1", "oid": "oid-c", "roles": []string{"Broker.Tokens"}, "sub": "oid-c", "tid": "tenant", "ver": "1.0"})
		},
	},
	{
		// Entra ID v2.0 tokens: azp, scp and roles.
		name: "EntraV2", profile: "entra", wrong: "rfc9068",
		settings: map[string]string{"BROKER_SCOPE_TOKENS": "Broker.Tokens"},
		user: func(h *harness, user, client string) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": h.sims.Auth.Audience(), "nbf": time.Now().Unix(), "azp": client, "azpacr": "0",
				"name": "Jane", "oid": "oid-" + user, "scp": "Broker.Link", "sub": user, "tid": "tenant", "ver": "2.0"})
		},
		clientToken: func(h *harness) jwt.MapClaims {
			return stamp(h, jwt.MapClaims{"aud": h.sims.Auth.Audience(), "nbf": time.Now().Unix(), "azp": companion, "azpacr": "1",
				"oid": "oid-c", "roles": []string{"Broker.Tokens"}, "sub": "oid-c", "tid": "tenant", "ver": "2.0"})
		},
	},
}

// signed signs c with h's authorization server.
func (h *harness) signed(c jwt.MapClaims) string {
	h.tb.Helper()
	raw, err := h.sims.Auth.Sign(c)
	if err != nil {
		h.tb.Fatal(err)
	}
	return raw
}

// handOverGRPC runs the hand-over through ReciprocalService/Authorize.
func (h *harness) handOverGRPC(t *testing.T, token, user, client string) error {
	t.Helper()
	_, err := brokerv1.NewReciprocalServiceClient(h.conn).Authorize(withBearer(t.Context(), token), &brokerv1.AuthorizeRequest{
		GrantType: "reciprocal_authorization_code", Code: h.sims.LWA.IssueCodeFor(user), ClientId: client})
	return err
}

// handOverHTTP runs Alexa's form hand-over and returns the status and the
// RFC 6749 error.
func (h *harness) handOverHTTP(t *testing.T, token, user, client string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor(user)}, "client_id": {client}}
	status, body, _ := h.authorize(form, "Bearer "+token)
	var got struct{ Error string }
	_ = json.Unmarshal([]byte(body), &got)
	return status, got.Error
}

// TestProfiles runs each vendor's real-shaped tokens through a broker set up
// for the vendor, over HTTP and gRPC: the hand-over with the user's token, a
// partner token with the companion backend's; a right carried in a claim the
// profile does not read grants nothing; a user token of another client is
// invalid_client; and a broker set up for a wrong profile refuses both tokens
// as invalid, logging the claim at fault and never the token.
func TestProfiles(t *testing.T) {
	harnesses := map[string]*harness{}
	// boot returns the broker of profile and settings, started once for the
	// whole test.
	boot := func(profile string, settings map[string]string) *harness {
		t.Helper()
		key := profile + "|" + settings["BROKER_SCOPE_TOKENS"]
		if h, ok := harnesses[key]; ok {
			return h
		}
		env := map[string]string{"BROKER_JWT_PROFILE": profile}
		for k, v := range settings {
			env[k] = v
		}
		if profile == "cognito" && env["BROKER_JWT_CLIENTS"] == "" {
			env["BROKER_JWT_AUDIENCE"], env["BROKER_JWT_CLIENTS"] = "", alexaClient+","+companion
		}
		h := newHarnessWith(t, sim.SetOptions{}, env)
		harnesses[key] = h
		return h
	}
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			h := boot(v.profile, v.settings)
			user := strings.ToLower(v.name) + "-parent"
			clientToken := h.signed(v.clientToken(h))

			t.Run("HandOver/HTTP", func(t *testing.T) {
				if status, code := h.handOverHTTP(t, h.signed(v.user(h, user, alexaClient)), user, alexaClient); status != 200 {
					t.Fatalf("hand-over: %d %s; logs:\n%s", status, code, h.logs.String())
				}
			})
			t.Run("HandOver/gRPC", func(t *testing.T) {
				if err := h.handOverGRPC(t, h.signed(v.user(h, user+"-grpc", alexaClient)), user+"-grpc", alexaClient); err != nil {
					t.Fatalf("Authorize: %v", err)
				}
			})
			for name, call := range transports {
				t.Run("PartnerToken/"+name, func(t *testing.T) {
					if tok, status := call(t, h, clientToken, user); status != 200 || !h.sims.LWA.ValidAccessToken(tok) {
						t.Fatalf("partner token: status %d", status)
					}
				})
			}
			t.Run("RightInIgnoredClaim", func(t *testing.T) {
				prof, _ := auth.LookupProfile(v.profile)
				c := v.clientToken(h)
				for _, claim := range prof.ScopeClaims {
					delete(c, claim)
				}
				ignored := "scope"
				if slices.Contains(prof.ScopeClaims, ignored) {
					ignored = "scp"
				}
				c[ignored] = h.config.ScopeTokens
				token := h.signed(c)
				for name, call := range transports {
					if _, status := call(t, h, token, user); status != 403 {
						t.Errorf("%s: status %d, want 403: only the profile's claims grant rights", name, status)
					}
				}
			})
			t.Run("ClientDiffersFromForm", func(t *testing.T) {
				token := h.signed(v.user(h, user, companion))
				if status, code := h.handOverHTTP(t, token, user, alexaClient); status != 400 || code != "invalid_client" {
					t.Errorf("HTTP: %d %s, want 400 invalid_client", status, code)
				}
				if err := h.handOverGRPC(t, token, user, alexaClient); status.Code(err) != codes.PermissionDenied {
					t.Errorf("gRPC: %v, want PermissionDenied", err)
				}
			})
			t.Run("WrongProfile/"+v.wrong, func(t *testing.T) {
				w := boot(v.wrong, nil)
				userToken, clientToken := w.signed(v.user(w, user, alexaClient)), w.signed(v.clientToken(w))
				if status, code := w.handOverHTTP(t, userToken, user, alexaClient); status != 401 || code != "invalid_token" {
					t.Errorf("hand-over over HTTP: %d %s, want 401 invalid_token", status, code)
				}
				if err := w.handOverGRPC(t, userToken, user, alexaClient); status.Code(err) != codes.Unauthenticated {
					t.Errorf("hand-over over gRPC: %v, want Unauthenticated", err)
				}
				for name, call := range transports {
					if _, status := call(t, w, clientToken, user); status != 401 {
						t.Errorf("partner token over %s: status %d, want 401", name, status)
					}
				}
				checkRefusalLogs(t, w.logs.String(), userToken, clientToken)
			})
		})
	}
}

// checkRefusalLogs fails the test unless logs hold refusals of bearer tokens
// that name a claim, and nothing of the tokens.
func checkRefusalLogs(t *testing.T, logs string, tokens ...string) {
	t.Helper()
	named := false
	for _, line := range strings.Split(logs, "\n") {
		var rec struct{ Msg, Claim, Reason string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "auth: bearer token refused" && rec.Claim != "" {
			named = true
		}
	}
	if !named {
		t.Errorf("no refusal log line names a claim; logs:\n%s", logs)
	}
	for _, token := range tokens {
		for _, part := range strings.Split(token, ".") {
			if strings.Contains(logs, part) {
				t.Fatalf("logs contain a part of a refused token")
			}
		}
	}
}
