package auth_test

import (
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestVerifier_Cache checks that a remembered token never outlives its exp and
// that a token is never taken for another.
func TestVerifier_Cache(t *testing.T) {
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	v := newVerifier(t, auth.Config{HS256Secret: testSecret, Now: clock, Leeway: -1, CacheTTL: time.Hour})
	secret := []byte(testSecret.Reveal())

	short := claimsAt(testNow)
	short["exp"] = testNow.Add(30 * time.Second).Unix()
	shortToken := sign(t, jwt.SigningMethodHS256, secret, short, nil)
	other := claimsAt(testNow)
	other["sub"] = "user-2"
	otherToken := sign(t, jwt.SigningMethodHS256, secret, other, nil)

	t.Run("Remembered", func(t *testing.T) {
		for range 2 {
			p, err := v.Verify(t.Context(), shortToken)
			if err != nil || p.Subject != "user-1" {
				t.Fatalf("Verify = %+v, %v", p, err)
			}
		}
	})
	t.Run("NotMistaken", func(t *testing.T) {
		p, err := v.Verify(t.Context(), otherToken)
		if err != nil || p.Subject != "user-2" {
			t.Fatalf("Verify of another token = %+v, %v; want user-2", p, err)
		}
		tampered := shortToken[:len(shortToken)-2] + "AA"
		if _, err := v.Verify(t.Context(), tampered); tokens.ErrorCode(err) != tokens.EUNAUTHENTICATED {
			t.Errorf("tampered token: %v, want EUNAUTHENTICATED", err)
		}
	})
	t.Run("NotPastExp", func(t *testing.T) {
		advance(31 * time.Second)
		if _, err := v.Verify(t.Context(), shortToken); tokens.ErrorCode(err) != tokens.EUNAUTHENTICATED {
			t.Errorf("expired but remembered token: %v, want EUNAUTHENTICATED", err)
		}
	})
}
