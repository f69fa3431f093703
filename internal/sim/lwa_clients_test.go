package sim_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// Credentials of a second client, registered by startLWAClients.
const (
	homeClient = "amzn1.application-oa2-client.home"
	homeSecret = "home-secret+/="
)

// startLWAClients starts an LWA simulator with homeClient registered beside
// the default client.
func startLWAClients(tb testing.TB) *sim.LWA {
	tb.Helper()
	l, _ := startLWA(tb, sim.LWAOptions{})
	if err := l.AddClient(homeClient, homeSecret); err != nil {
		tb.Fatalf("AddClient: %v", err)
	}
	return l
}

// clientForm returns the form of a grant with the credentials id and secret in
// the form.
func clientForm(id, secret string, kv ...string) url.Values {
	v := url.Values{"client_id": {id}, "client_secret": {secret}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// exchangeAs exchanges code with the credentials id and secret.
func exchangeAs(tb testing.TB, l *sim.LWA, id, secret, code string) lwaAnswer {
	tb.Helper()
	return lwaPost(tb, l, clientForm(id, secret, "grant_type", "authorization_code", "code", code), false)
}

// refreshAs refreshes rt with the credentials id and secret.
func refreshAs(tb testing.TB, l *sim.LWA, id, secret, rt string) lwaAnswer {
	tb.Helper()
	return lwaPost(tb, l, clientForm(id, secret, "grant_type", "refresh_token", "refresh_token", rt), false)
}

// mustOK fails the test unless a is a success answer, and returns its tokens.
func mustOK(tb testing.TB, a lwaAnswer) (access, refresh string) {
	tb.Helper()
	if a.Status != http.StatusOK {
		tb.Fatalf("answer = %d %v, want 200", a.Status, a.Body)
	}
	access, _ = a.Body["access_token"].(string)
	refresh, _ = a.Body["refresh_token"].(string)
	return access, refresh
}

func TestLWA_AddClient(t *testing.T) {
	t.Run("Accepted", func(t *testing.T) {
		l := startLWAClients(t)
		for _, tc := range []struct {
			name   string
			header func(*http.Request)
			form   url.Values
		}{
			{"Basic", func(r *http.Request) { r.SetBasicAuth(url.QueryEscape(homeClient), url.QueryEscape(homeSecret)) }, url.Values{}},
			{"BasicNotFormEncoded", func(r *http.Request) { r.SetBasicAuth(homeClient, homeSecret) }, url.Values{}},
			{"Form", nil, clientForm(homeClient, homeSecret)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.form.Set("grant_type", "authorization_code")
				tc.form.Set("code", l.IssueCodeForClient("u", homeClient))
				mustOK(t, lwaPostRaw(t, l, "application/x-www-form-urlencoded", tc.form.Encode(), tc.header))
			})
		}
	})
	t.Run("WrongSecret", func(t *testing.T) {
		l := startLWAClients(t)
		for _, secret := range []string{"wrong", l.ClientSecret()} {
			a := exchangeAs(t, l, homeClient, secret, l.IssueCodeForClient("u", homeClient))
			assertOAuthError(t, a, http.StatusUnauthorized, "invalid_client")
		}
	})
	t.Run("DefaultClientStays", func(t *testing.T) {
		l := startLWAClients(t)
		mustOK(t, exchangeAs(t, l, l.ClientID(), l.ClientSecret(), l.IssueCode()))
	})
	t.Run("Refused", func(t *testing.T) {
		l := startLWAClients(t)
		for _, tc := range []struct{ name, id, secret string }{
			{"NoID", "", "s"},
			{"NoSecret", "c", ""},
			{"Duplicate", homeClient, "other"},
			{"DefaultClient", sim.DefaultLWAClientID, "other"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := l.AddClient(tc.id, tc.secret); err == nil {
					t.Errorf("AddClient(%q, %q) = nil, want an error", tc.id, tc.secret)
				}
			})
		}
		// The refused registrations changed nothing.
		mustOK(t, exchangeAs(t, l, homeClient, homeSecret, l.IssueCodeForClient("u", homeClient)))
		assertOAuthError(t, exchangeAs(t, l, l.ClientID(), "other", l.IssueCode()), http.StatusUnauthorized, "invalid_client")
	})
}

func TestLWA_CodeBoundToClient(t *testing.T) {
	t.Run("OwnClient", func(t *testing.T) {
		l := startLWAClients(t)
		access, refresh := mustOK(t, exchangeAs(t, l, homeClient, homeSecret, l.IssueCodeForClient("parent", homeClient)))
		if refresh == "" {
			t.Error("no refresh token")
		}
		if user, ok := l.AccessTokenUser(access); !ok || user != "parent" {
			t.Errorf("AccessTokenUser = %q, %v; want parent, true", user, ok)
		}
		if client, ok := l.AccessTokenClient(access); !ok || client != homeClient {
			t.Errorf("AccessTokenClient = %q, %v; want %q, true", client, ok, homeClient)
		}
		if !l.ValidAccessToken(access) {
			t.Error("ValidAccessToken = false")
		}
	})
	t.Run("DefaultClientOfIssueCodeFor", func(t *testing.T) {
		l := startLWAClients(t)
		access, _ := mustOK(t, exchangeAs(t, l, l.ClientID(), l.ClientSecret(), l.IssueCodeFor("parent")))
		if client, ok := l.AccessTokenClient(access); !ok || client != l.ClientID() {
			t.Errorf("AccessTokenClient = %q, %v; want %q, true", client, ok, l.ClientID())
		}
	})
	for _, tc := range []struct {
		name       string
		homeIssues bool // the code is issued to homeClient, else to the default client
	}{
		{"OtherClient", true},
		{"DefaultCodeToOtherClient", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := startLWAClients(t)
			ownID, ownSecret, otherID, otherSecret := homeClient, homeSecret, l.ClientID(), l.ClientSecret()
			code := l.IssueCodeForClient("parent", homeClient)
			if !tc.homeIssues {
				ownID, ownSecret, otherID, otherSecret = otherID, otherSecret, ownID, ownSecret
				code = l.IssueCodeFor("parent")
			}
			a := exchangeAs(t, l, otherID, otherSecret, code)
			assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
			if got, want := a.Body["error_description"], "The request has an invalid grant parameter : code"; got != want {
				t.Errorf("error_description = %q, want %q", got, want)
			}
			// The code was not used up: its own client still exchanges it.
			mustOK(t, exchangeAs(t, l, ownID, ownSecret, code))
			if got, want := l.Stats(), (sim.LWAStats{Requests: 2, Exchanges: 2, ExchangesOK: 1}); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("UnregisteredClient", func(t *testing.T) {
		l := startLWAClients(t)
		code := l.IssueCodeForClient("parent", "amzn1.application-oa2-client.nobody")
		for _, c := range [][2]string{{l.ClientID(), l.ClientSecret()}, {homeClient, homeSecret}} {
			assertOAuthError(t, exchangeAs(t, l, c[0], c[1], code), http.StatusBadRequest, "invalid_grant")
		}
	})
	t.Run("RevokeOnCodeReuseByOtherClient", func(t *testing.T) {
		l, _ := startLWA(t, sim.LWAOptions{RevokeOnCodeReuse: true})
		if err := l.AddClient(homeClient, homeSecret); err != nil {
			t.Fatal(err)
		}
		code := l.IssueCodeForClient("parent", homeClient)
		access, _ := mustOK(t, exchangeAs(t, l, homeClient, homeSecret, code))
		// Another client presenting the used code is refused, but the
		// grant is not its to revoke.
		assertOAuthError(t, exchangeAs(t, l, l.ClientID(), l.ClientSecret(), code), http.StatusBadRequest, "invalid_grant")
		if !l.ValidAccessToken(access) {
			t.Error("another client's reuse of the code revoked the grant")
		}
	})
}

func TestLWA_RefreshBoundToClient(t *testing.T) {
	t.Run("OtherClient", func(t *testing.T) {
		l := startLWAClients(t)
		_, rt := mustOK(t, exchangeAs(t, l, homeClient, homeSecret, l.IssueCodeForClient("parent", homeClient)))
		a := refreshAs(t, l, l.ClientID(), l.ClientSecret(), rt)
		assertOAuthError(t, a, http.StatusBadRequest, "invalid_grant")
		if got, want := a.Body["error_description"], "The request has an invalid grant parameter : refresh_token"; got != want {
			t.Errorf("error_description = %q, want %q", got, want)
		}
		// The token stays valid for its own client, which refreshes it.
		access, next := mustOK(t, refreshAs(t, l, homeClient, homeSecret, rt))
		if next == "" || next == rt {
			t.Errorf("refresh token not rotated: %q", next)
		}
		if client, ok := l.AccessTokenClient(access); !ok || client != homeClient {
			t.Errorf("AccessTokenClient of the refreshed token = %q, %v; want %q, true", client, ok, homeClient)
		}
		if got, want := l.Stats(), (sim.LWAStats{Requests: 3, Exchanges: 1, ExchangesOK: 1, Refreshes: 2, RefreshesOK: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("DefaultTokenToOtherClient", func(t *testing.T) {
		l := startLWAClients(t)
		_, rt := lwaExchange(t, l)
		assertOAuthError(t, refreshAs(t, l, homeClient, homeSecret, rt), http.StatusBadRequest, "invalid_grant")
		mustOK(t, refreshAs(t, l, l.ClientID(), l.ClientSecret(), rt))
	})
}

func TestLWA_RevokeUserClient(t *testing.T) {
	l := startLWAClients(t)
	homeAccess, homeRefresh := mustOK(t, exchangeAs(t, l, homeClient, homeSecret, l.IssueCodeForClient("parent", homeClient)))
	defAccess, defRefresh := mustOK(t, exchangeAs(t, l, l.ClientID(), l.ClientSecret(), l.IssueCodeFor("parent")))
	homeCode := l.IssueCodeForClient("parent", homeClient)
	otherUser, _ := mustOK(t, exchangeAs(t, l, homeClient, homeSecret, l.IssueCodeForClient("other", homeClient)))

	if got, want := l.RevokeUserClient("parent", homeClient), 2; got != want {
		t.Errorf("RevokeUserClient = %d, want %d (one grant, one code)", got, want)
	}
	if l.ValidAccessToken(homeAccess) {
		t.Error("the revoked client's access token is still valid")
	}
	assertOAuthError(t, refreshAs(t, l, homeClient, homeSecret, homeRefresh), http.StatusBadRequest, "invalid_grant")
	assertOAuthError(t, exchangeAs(t, l, homeClient, homeSecret, homeCode), http.StatusBadRequest, "invalid_grant")

	// The user's grant with the default client, and another user's grant
	// with the revoked client, stand.
	if !l.ValidAccessToken(defAccess) || !l.ValidAccessToken(otherUser) {
		t.Error("RevokeUserClient revoked more than the user's grants with the client")
	}
	mustOK(t, refreshAs(t, l, l.ClientID(), l.ClientSecret(), defRefresh))

	// RevokeUser revokes the user's grants with every client.
	_, homeRefresh = mustOK(t, exchangeAs(t, l, homeClient, homeSecret, l.IssueCodeForClient("parent", homeClient)))
	if got := l.RevokeUser("parent"); got != 2 {
		t.Errorf("RevokeUser = %d, want 2 (a grant with each client)", got)
	}
	assertOAuthError(t, refreshAs(t, l, homeClient, homeSecret, homeRefresh), http.StatusBadRequest, "invalid_grant")
	if l.ValidAccessToken(defAccess) {
		t.Error("RevokeUser left the default client's grant valid")
	}
}
