package tokens_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestService_Token checks Token, one case per function below: what a caller
// gets for a fresh, stale, refused or vanished link. The races with other
// writers are in token_race_test.go, the lease across instances in
// lease_test.go.
func TestService_Token(t *testing.T) {
	t.Run("NotFound", testTokenNotFound)
	t.Run("Fresh", testTokenFresh)
	t.Run("RefreshAhead", testTokenRefreshAhead)
	t.Run("ShortLived", testTokenShortLived)
	t.Run("ExpiredGrant", testTokenExpiredGrant)
	t.Run("Rotation", testTokenRotation)
	t.Run("InvalidGrant", testTokenInvalidGrant)
	t.Run("Transient", testTokenTransient)
	t.Run("NoRotation", testTokenNoRotation)
	t.Run("DeletedDuringRefresh", testTokenDeletedDuringRefresh)
	t.Run("RelinkedDuringRefresh", testTokenRelinkedDuringRefresh)
	t.Run("RefusedWhileRelinked", testTokenRefusedWhileRelinked)
	t.Run("MarkedDuringRefresh", testTokenMarkedDuringRefresh)
}

// testTokenNotFound checks that a user with no link gets ErrLinkNotFound.
func testTokenNotFound(t *testing.T) {
	h := newHarness(t)
	_, err := h.token(t.Context(), "nobody")
	if !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Fatalf("Token error = %v, want ErrLinkNotFound", err)
	}
	assertCode(t, err, tokens.ENOTFOUND)
}

// testTokenFresh checks that a token fresh for RefreshAhead is handed out as
// stored, without asking LWA.
func testTokenFresh(t *testing.T) {
	h := newHarness(t)
	l, grant := h.mustLink(t, "alice")
	h.clock.Advance(30 * time.Minute)
	tok := h.mustToken(t, "alice")
	if got, want := tok.AccessToken, grant.AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the exchanged one", got.Reveal())
	}
	if got, want := tok.ExpiresAt, l.AccessTokenExpiresAt; !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}
	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
}

// testTokenRefreshAhead checks that a token is refreshed once it has
// RefreshAhead or less to live, and the refreshed link is stored with only its
// tokens and times changed.
func testTokenRefreshAhead(t *testing.T) {
	for _, tt := range []struct {
		name        string
		remaining   time.Duration // of the access token's life when asked
		wantRefresh bool
	}{
		{"JustFresh", ahead + time.Nanosecond, false},
		{"AtRefreshAhead", ahead, true},
		{"WithinRefreshAhead", ahead - time.Second, true},
		{"AtExpiry", 0, true},
		{"Expired", -24 * time.Hour, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			linked, old := h.mustLink(t, "alice")
			now := h.clock.Advance(ttl - tt.remaining)
			tok := h.mustToken(t, "alice")
			l := h.stored(t, "alice")

			if !tt.wantRefresh {
				assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
				if got, want := tok.AccessToken, old.AccessToken; got != want {
					t.Errorf("AccessToken = %s, want the stored one", got.Reveal())
				}
				if diff := cmp.Diff(linked, l); diff != "" {
					t.Errorf("stored link changed (-before +after):\n%s", diff)
				}
				return
			}
			assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
			grant := h.lwa.lastGrant()
			if got, want := tok.AccessToken, grant.AccessToken; got != want {
				t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
			}
			if got, want := tok.ExpiresAt, now.Add(ttl); !got.Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v", got, want)
			}
			if left := tok.ExpiresAt.Sub(now); left <= ahead {
				t.Errorf("token valid for %v more, want more than %v", left, ahead)
			}
			if got, want := l.AccessTokenExpiresAt, tok.ExpiresAt; !got.Equal(want) {
				t.Errorf("stored AccessTokenExpiresAt = %v, want %v", got, want)
			}
			if got, want := l.LastRefreshedAt, now; !got.Equal(want) {
				t.Errorf("stored LastRefreshedAt = %v, want %v", got, want)
			}
			if got, want := l.LinkedAt, linked.LinkedAt; !got.Equal(want) {
				t.Errorf("stored LinkedAt = %v, want unchanged %v", got, want)
			}
			if got, want := l.CodeHash, linked.CodeHash; got != want {
				t.Errorf("stored CodeHash = %q, want unchanged %q", got, want)
			}
			if l.Version <= linked.Version {
				t.Errorf("stored Version = %d, want > %d", l.Version, linked.Version)
			}
			h.assertSealed(t, l, []tokens.Secret{grant.AccessToken, grant.RefreshToken}, old.AccessToken, old.RefreshToken)

			// Asked again at once: the refreshed token is fresh.
			if got, want := h.mustToken(t, "alice").AccessToken, grant.AccessToken; got != want {
				t.Errorf("second AccessToken = %s, want %s", got.Reveal(), want.Reveal())
			}
			assertCount(t, "LWA refreshes after a second Token", h.lwa.refreshes.Load(), 1)
		})
	}
}

// testTokenShortLived checks that tokens LWA issues for less than twice
// RefreshAhead are refreshed at half their lifetime, not on every call.
func testTokenShortLived(t *testing.T) {
	h := newHarness(t)
	h.lwa.setExpiresIn(time.Minute) // as the LWA client bounds expires_in: 0 becomes a minute
	h.mustLink(t, "alice")
	for i := range 6 { // a call every 10 s for a minute
		if i > 0 {
			h.clock.Advance(10 * time.Second)
		}
		if left := h.mustToken(t, "alice").ExpiresAt.Sub(h.clock.Now()); left <= 0 {
			t.Fatalf("call %d: token expired %v ago", i, -left)
		}
	}
	// Refreshed once, by the call at 30 s, when half its life was left; the
	// new token serves the calls at 40 s and 50 s.
	assertCount(t, "LWA refreshes of six calls in a minute", h.lwa.refreshes.Load(), 1)
}

// testTokenExpiredGrant checks that a token LWA issued expired is never
// handed out.
func testTokenExpiredGrant(t *testing.T) {
	for _, tt := range []struct {
		name      string
		expiresIn time.Duration
	}{
		{"Zero", 0},
		{"Negative", -time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustLink(t, "alice")
			h.clock.Advance(ttl)
			h.lwa.setExpiresIn(tt.expiresIn)
			tok, err := h.token(t.Context(), "alice")
			assertCode(t, err, tokens.EUNAVAILABLE)
			if tok.AccessToken != "" {
				t.Errorf("handed out a token that expires at %v, now %v", tok.ExpiresAt, h.clock.Now())
			}
			// The rotated refresh token is kept all the same.
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{h.lwa.lastGrant().RefreshToken})
		})
	}
}

// testTokenRotation checks that every rotated refresh token is stored before it
// is needed.
func testTokenRotation(t *testing.T) {
	// The fake LWA refuses every refresh token but the newest, so five
	// successful refreshes prove that each rotated token was stored.
	h := newHarness(t)
	_, grant := h.mustLink(t, "alice")
	seen := map[tokens.Secret]bool{grant.AccessToken: true}
	for i := range 5 {
		h.clock.Advance(ttl + time.Minute)
		tok, err := h.token(t.Context(), "alice")
		if err != nil {
			t.Fatalf("expiry %d: Token error = %v", i+1, err)
		}
		assertCount(t, fmt.Sprintf("expiry %d: LWA refreshes", i+1), h.lwa.refreshes.Load(), int64(i+1))
		if seen[tok.AccessToken] {
			t.Errorf("expiry %d: access token handed out before", i+1)
		}
		seen[tok.AccessToken] = true
		next := h.lwa.lastGrant()
		h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{next.RefreshToken}, grant.RefreshToken)
		grant = next
	}
	if got, want := h.stored(t, "alice").State, tokens.StateLinked; got != want {
		t.Errorf("State = %v, want %v", got, want)
	}
}

// testTokenInvalidGrant checks that LWA's invalid_grant marks the link
// RELINK_REQUIRED, and LWA is not asked again until the user links again.
func testTokenInvalidGrant(t *testing.T) {
	for _, tt := range []struct {
		name   string
		refuse func(h *harness)
	}{
		{"Refused", func(h *harness) { h.lwa.setRefreshErr(errRefused) }},
		{"Revoked", func(h *harness) { h.lwa.revoke("alice") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			linked, _ := h.mustLink(t, "alice")
			tt.refuse(h)
			h.clock.Advance(ttl)

			_, err := h.token(t.Context(), "alice")
			assertCode(t, err, tokens.ERELINK)
			assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
			l := h.stored(t, "alice")
			if got, want := l.State, tokens.StateRelinkRequired; got != want {
				t.Errorf("State = %v, want %v", got, want)
			}
			if l.Version <= linked.Version {
				t.Errorf("Version = %d, want > %d", l.Version, linked.Version)
			}

			// Nothing more is asked of LWA until the user links again.
			h.lwa.setRefreshErr(nil)
			for range 3 {
				_, err := h.token(t.Context(), "alice")
				assertCode(t, err, tokens.ERELINK)
			}
			_, err = h.refresh(t.Context(), "alice")
			assertCode(t, err, tokens.ERELINK)
			assertCount(t, "LWA refreshes after further calls", h.lwa.refreshes.Load(), 1)
		})
	}
}

// testTokenTransient checks that a refresh that fails for now leaves the link
// as it was, and the next call refreshes.
func testTokenTransient(t *testing.T) {
	h := newHarness(t)
	h.mustLink(t, "alice")
	now := h.clock.Advance(ttl - time.Minute)
	linked := h.stored(t, "alice")
	h.lwa.setRefreshErr(errTransient)

	_, err := h.token(t.Context(), "alice")
	assertCode(t, err, tokens.EUNAVAILABLE)
	if diff := cmp.Diff(linked, h.stored(t, "alice")); diff != "" {
		t.Errorf("stored link changed by a failed refresh (-before +after):\n%s", diff)
	}

	h.lwa.setRefreshErr(nil)
	tok := h.mustToken(t, "alice")
	if got, want := tok.AccessToken, h.lwa.lastGrant().AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
	}
	if got, want := tok.ExpiresAt, now.Add(ttl); !got.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", got, want)
	}
	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 2)
}

// testTokenNoRotation checks that when LWA sends no new refresh token, the old
// one is kept and keeps working.
func testTokenNoRotation(t *testing.T) {
	h := newHarness(t)
	_, grant := h.mustLink(t, "alice")
	h.lwa.setRotate(false)
	h.clock.Advance(ttl)
	tok := h.mustToken(t, "alice")
	next := h.lwa.lastGrant()
	if got, want := tok.AccessToken, next.AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
	}
	h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{next.AccessToken, grant.RefreshToken}, grant.AccessToken)

	// The kept refresh token still works, with rotation back on too.
	h.clock.Advance(ttl)
	h.mustToken(t, "alice")
	h.lwa.setRotate(true)
	h.clock.Advance(ttl)
	h.mustToken(t, "alice")
	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 3)
}
