package seal_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// mustRing returns a Ring made by seal.NewRing.
func mustRing(tb testing.TB, first seal.RingKey, more ...seal.RingKey) *seal.Ring {
	tb.Helper()
	r, err := seal.NewRing(first, more...)
	if err != nil {
		tb.Fatalf("NewRing: %v", err)
	}
	return r
}

func TestNewRing(t *testing.T) {
	a, b := mustKey(t, 1), mustKey(t, 2)
	t.Run("KeyIDs", func(t *testing.T) {
		r := mustRing(t, b, a, b)
		if got, want := r.KeyIDs(), []string{b.ID(), a.ID()}; !slices.Equal(got, want) {
			t.Errorf("KeyIDs() = %v, want %v (in order, each once)", got, want)
		}
		if got, want := r.SealingKeyID(), b.ID(); got != want {
			t.Errorf("SealingKeyID() = %q, want %q", got, want)
		}
	})
	for _, tc := range []struct {
		name string
		keys []seal.RingKey
	}{
		{"ZeroKey", []seal.RingKey{seal.Key{}}},
		{"ZeroKeyOlder", []seal.RingKey{a, seal.Key{}}},
		{"ZeroEnvelope", []seal.RingKey{new(seal.Envelope)}},
		{"NilEnvelope", []seal.RingKey{a, (*seal.Envelope)(nil)}},
		{"Nil", []seal.RingKey{nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := seal.NewRing(tc.keys[0], tc.keys[1:]...)
			if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
				t.Errorf("NewRing error = %v, want code %q", err, want)
			}
		})
	}
}

// TestRing_Rotation: a value sealed under A opens under [B, A], is named as
// A's, and under [B] alone answers a KeyMissingError that names A.
func TestRing_Rotation(t *testing.T) {
	a, b := mustKey(t, 1), mustKey(t, 2)
	const user = "amzn1.account.USER"
	plaintext := []byte("Atzr|refresh")
	old, err := mustRing(t, a).Seal(user, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustRing(t, b, a)
	t.Run("OpensUnderOlderKey", func(t *testing.T) {
		got, err := rotated.Open(user, old)
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("Open = %q, %v", got, err)
		}
		if got, want := rotated.KeyOf(old), a.ID(); got != want {
			t.Errorf("KeyOf = %q, want %q", got, want)
		}
	})
	t.Run("SealsWithFirst", func(t *testing.T) {
		s, err := rotated.Seal(user, plaintext)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := rotated.KeyOf(s), b.ID(); got != want {
			t.Errorf("KeyOf(new seal) = %q, want %q", got, want)
		}
		if _, err := mustSealer(t, b).Open(user, s); err != nil {
			t.Errorf("a Sealer of B does not open the Ring's seal: %v", err)
		}
	})
	t.Run("KeyRemoved", func(t *testing.T) {
		_, err := mustRing(t, b).Open(user, old)
		var missing *tokens.KeyMissingError
		if !errors.As(err, &missing) || missing.KeyID != a.ID() {
			t.Fatalf("Open error = %v, want a KeyMissingError naming %s", err, a.ID())
		}
		if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
			t.Errorf("code = %q, want %q", got, want)
		}
		if msg := tokens.ErrorMessage(err); !strings.Contains(msg, a.ID()) {
			t.Errorf("message %q does not name the key id %s", msg, a.ID())
		}
	})
	t.Run("AnotherUser", func(t *testing.T) {
		if _, err := rotated.Open("someone-else", old); err == nil {
			t.Error("a value sealed for one user opened for another")
		}
	})
}

// TestRing_KMS: a Ring mixing a KMS key and a static key. Every instance on the
// KMS key counts as one key id, "kms:" and the key; a static value opens under
// it (the move from base64 to kms: needs no re-link); a value of an earlier
// Envelope (kms1:) opens under the first KMS key and is named apart, so that it
// is sealed again; and a Ring without the KMS key names it when asked to open.
func TestRing_KMS(t *testing.T) {
	k := startKMS(t)
	client := newKMSClient(k.URL())
	static := mustKey(t, 9)
	a, b := mustEnvelope(t, client), mustEnvelope(t, client) // two instances
	ringA, ringB := mustRing(t, a, static), mustRing(t, b, static)
	const user = "amzn1.account.USER"
	plaintext := []byte("Atzr|refresh")
	kmsID := seal.KMSKeyIDPrefix + sim.DefaultKMSKeyID

	sealedA, err := ringA.Seal(user, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	sealedStatic, err := mustRing(t, static).Seal(user, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := seal.SealLegacy(a, user, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	if got := ringA.SealingKeyID(); got != kmsID {
		t.Errorf("SealingKeyID() = %q, want %q", got, kmsID)
	}
	for _, tc := range []struct {
		name   string
		ring   *seal.Ring
		sealed tokens.Sealed
		keyOf  string
		code   tokens.Code
	}{
		{"OwnInstance", ringA, sealedA, kmsID, ""},
		{"OtherInstance", ringB, sealedA, kmsID, ""},
		{"Static", ringB, sealedStatic, static.ID(), ""},
		{"Legacy", ringB, legacy, seal.LegacyKMSKeyID, ""},
		{"KMSKeyRemoved", mustRing(t, static), sealedA, kmsID, tokens.EINTERNAL},
		{"LegacyWithoutKMS", mustRing(t, static), legacy, seal.LegacyKMSKeyID, tokens.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.ring.KeyOf(tc.sealed); got != tc.keyOf {
				t.Errorf("KeyOf = %q, want %q", got, tc.keyOf)
			}
			got, err := tc.ring.Open(user, tc.sealed)
			if code := tokens.ErrorCode(err); code != tc.code {
				t.Fatalf("Open error = %v, want code %q", err, tc.code)
			}
			if tc.code == "" && !bytes.Equal(got, plaintext) {
				t.Errorf("Open = %q, want %q", got, plaintext)
			}
			var missing *tokens.KeyMissingError
			if tc.code != "" && (!errors.As(err, &missing) || missing.KeyID != tc.keyOf) {
				t.Errorf("Open error = %v, want a KeyMissingError naming %s", err, tc.keyOf)
			}
		})
	}
}

// TestRing_TwoKMSKeys: a rotation from one KMS key to another keeps the values
// of the first open, each named by its KMS key.
func TestRing_TwoKMSKeys(t *testing.T) {
	k := sim.NewKMS(sim.KMSOptions{KeyIDs: []string{"key-old", "key-new"}})
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	client := newKMSClient(k.URL())
	envelope := func(id string) *seal.Envelope {
		e, err := seal.NewEnvelope(context.Background(), client, id)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	const user = "u"
	old, err := mustRing(t, envelope("key-old")).Seal(user, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	rotated := mustRing(t, envelope("key-new"), envelope("key-old"))
	if got, want := rotated.KeyOf(old), "kms:key-old"; got != want {
		t.Errorf("KeyOf = %q, want %q", got, want)
	}
	if got, err := rotated.Open(user, old); err != nil || string(got) != "x" {
		t.Errorf("Open = %q, %v", got, err)
	}
	var missing *tokens.KeyMissingError
	if _, err := mustRing(t, envelope("key-new")).Open(user, old); !errors.As(err, &missing) || missing.KeyID != "kms:key-old" {
		t.Errorf("Open without the old KMS key = %v, want a KeyMissingError naming kms:key-old", err)
	}
}
