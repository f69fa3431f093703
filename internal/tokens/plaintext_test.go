package tokens_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestService_Token_Unreadable checks that sealed tokens that do not open, or
// open to something other than the service's plaintext, are an internal error,
// and that LWA is not asked.
func TestService_Token_Unreadable(t *testing.T) {
	for _, tt := range []struct {
		name      string
		plaintext []byte
		sealedFor string
	}{
		{"OtherUser", []byte{1, 0, 0}, "bob"},
		{"Empty", []byte{}, "alice"},
		{"UnknownFormat", []byte{9, 0, 0}, "alice"},
		{"TruncatedAccessToken", []byte{1, 5, 'a'}, "alice"},
		{"NoRefreshToken", []byte{1, 1, 'a'}, "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			l, _ := h.mustLink(t, "alice")
			sealed, err := h.sealer.Seal(tt.sealedFor, tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			l.Tokens = sealed
			if err := h.store.PutLink(t.Context(), l); err != nil {
				t.Fatal(err)
			}
			_, err = h.token(t.Context(), "alice")
			assertCode(t, err, tokens.EINTERNAL)
			h.clock.Advance(ttl)
			_, err = h.token(t.Context(), "alice")
			assertCode(t, err, tokens.EINTERNAL)
			assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
		})
	}
}

// TestService_Token_CopiedTokens checks that tokens opened once for one user,
// and then copied into another user's link, do not open there: the access
// tokens Token remembers are the user's they were opened for.
func TestService_Token_CopiedTokens(t *testing.T) {
	h := newHarness(t)
	h.mustLink(t, "bob")
	bobs, err := h.token(t.Context(), "bob") // opened, and remembered
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.token(t.Context(), "bob")
	if err != nil || again.AccessToken != bobs.AccessToken {
		t.Fatalf("bob's token again = %v, %v; want the same", again, err)
	}
	alice, _ := h.mustLink(t, "alice")
	bob, err := h.store.GetLink(t.Context(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	alice.Tokens = bob.Tokens
	if err := h.store.PutLink(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	got, err := h.token(t.Context(), "alice")
	assertCode(t, err, tokens.EINTERNAL)
	if got.AccessToken == bobs.AccessToken {
		t.Error("alice's link handed out bob's access token")
	}
}
