package lwa_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/lwa"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestClient_ExpiresIn runs LWA's odd expires_in values through exchanges and
// refreshes against the simulator: the lifetime is bounded, what LWA sent is
// logged, and a refresh's rotated token is kept. An expires_in that is not a
// whole number makes the answer malformed.
func TestClient_ExpiresIn(t *testing.T) {
	tests := []struct {
		name string
		raw  string // the expires_in the simulator sends; "" leaves it out
		// wantLifetime is the lifetime of the grant, 0 for an error.
		wantLifetime time.Duration
		// wantLogged is the expires_in the client's warning names, "" for no warning.
		wantLogged string
	}{
		{"Hour", `3600`, time.Hour, ""},
		{"String", `"1800"`, 30 * time.Minute, ""},
		{"Minimum", `60`, time.Minute, ""},
		{"Maximum", `86400`, 24 * time.Hour, ""},
		{"Zero", `0`, lwa.MinExpiresIn, "0"},
		{"Negative", `-30`, lwa.MinExpiresIn, "-30"},
		{"NegativeString", `"-30"`, lwa.MinExpiresIn, "-30"},
		{"BelowMinimum", `59`, lwa.MinExpiresIn, "59"},
		{"AboveMaximum", `86401`, lwa.MaxExpiresIn, "86401"},
		{"Absurd", `99999999999`, lwa.MaxExpiresIn, "99999999999"},
		{"Missing", ``, lwa.DefaultExpiresIn, "(none)"},
		{"Null", `null`, lwa.DefaultExpiresIn, "(none)"},
		{"NotANumber", `"soon"`, 0, ""},
		{"Fraction", `1.5`, 0, ""},
	}
	for _, op := range []string{"Exchange", "Refresh"} {
		t.Run(op, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					l := startLWA(t, sim.LWAOptions{})
					var logs bytes.Buffer
					c := newClient(t, l, func(o *lwa.Options) {
						o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
					})
					code := l.IssueCode()
					var (
						g      tokens.Grant
						err    error
						issued []string
					)
					if op == "Exchange" {
						l.SetExpiresIn(tt.raw)
						g, err = c.Exchange(t.Context(), tokens.Secret(code))
					} else {
						first, ferr := c.Exchange(t.Context(), tokens.Secret(code))
						if ferr != nil {
							t.Fatalf("Exchange: %v", ferr)
						}
						issued = append(issued, first.AccessToken.Reveal(), first.RefreshToken.Reveal())
						l.SetExpiresIn(tt.raw)
						g, err = c.Refresh(t.Context(), first.RefreshToken)
					}
					issued = append(issued, code, g.AccessToken.Reveal(), g.RefreshToken.Reveal())
					assertNoSecret(t, "log", logs.String(), issued...)
					if tt.wantLifetime == 0 {
						// Not a whole number: a malformed answer, as x/oauth2 reads it.
						assertErrorCode(t, err, tokens.EUNAVAILABLE)
						return
					}
					if err != nil {
						t.Fatalf("%s: %v", op, err)
					}
					if got, want := g.Expiry, clientNow.Add(tt.wantLifetime); !got.Equal(want) {
						t.Errorf("Expiry = %v, want %v (lifetime %v)", got, want, tt.wantLifetime)
					}
					if op == "Refresh" && (g.RefreshToken == "" || !l.ValidAccessToken(g.AccessToken.Reveal())) {
						t.Error("the rotated refresh token or the new access token was not kept")
					}
					logged := logs.String()
					switch {
					case tt.wantLogged == "" && logged != "":
						t.Errorf("logged %s, want nothing", logged)
					case tt.wantLogged != "" && !strings.Contains(logged, `"expires_in":"`+tt.wantLogged+`"`):
						t.Errorf("log = %s, want a warning naming expires_in %s", logged, tt.wantLogged)
					}
				})
			}
		})
	}
}
