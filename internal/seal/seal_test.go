package seal_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// keyBytes returns 32 distinct bytes starting at first, so that keys made from
// different firsts differ.
func keyBytes(first byte) []byte {
	b := make([]byte, seal.KeySize)
	for i := range b {
		b[i] = first + byte(i)
	}
	return b
}

// mustKey returns the Key made of keyBytes(first).
func mustKey(tb testing.TB, first byte) seal.Key {
	tb.Helper()
	k, err := seal.NewKey(keyBytes(first))
	if err != nil {
		tb.Fatalf("NewKey: %v", err)
	}
	return k
}

// mustSealer returns a Sealer made by seal.New.
func mustSealer(tb testing.TB, current seal.Key, older ...seal.Key) *seal.Sealer {
	tb.Helper()
	s, err := seal.New(current, older...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

// mustSeal seals plaintext for userID.
func mustSeal(tb testing.TB, s *seal.Sealer, userID string, plaintext []byte) tokens.Sealed {
	tb.Helper()
	sealed, err := s.Seal(userID, plaintext)
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	return sealed
}

// assertNotContains fails when text contains any of the forbidden strings.
func assertNotContains(tb testing.TB, what, text string, forbidden ...string) {
	tb.Helper()
	for _, f := range forbidden {
		if f != "" && strings.Contains(text, f) {
			tb.Errorf("%s %q contains %q", what, text, f)
		}
	}
}

// keyForms returns every form in which key bytes b might leak.
func keyForms(b []byte) []string {
	return []string{
		string(b),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		fmt.Sprint(b),            // [0 1 2 ...]
		fmt.Sprintf("%d", b[:4]), // the start of it, as fmt would print an array
		fmt.Sprintf("%x", b[:8]),
		// The AES key schedule starts with the key's words, in either byte order.
		fmt.Sprint(binary.BigEndian.Uint32(b)),
		fmt.Sprint(binary.LittleEndian.Uint32(b)),
	}
}

func TestParseKey(t *testing.T) {
	raw := keyBytes(200) // includes bytes that encode to + / - _ in base64
	want := mustKey(t, 200).ID()

	t.Run("Valid", func(t *testing.T) {
		for _, tc := range []struct {
			name, in string
		}{
			{"Std", base64.StdEncoding.EncodeToString(raw)},
			{"URL", base64.URLEncoding.EncodeToString(raw)},
			{"RawStd", base64.RawStdEncoding.EncodeToString(raw)},
			{"RawURL", base64.RawURLEncoding.EncodeToString(raw)},
			{"TrailingNewline", base64.StdEncoding.EncodeToString(raw) + "\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k, err := seal.ParseKey(tc.in)
				if err != nil {
					t.Fatalf("ParseKey: %v", err)
				}
				if got := k.ID(); got != want {
					t.Errorf("ID() = %q, want %q", got, want)
				}
			})
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tc := range []struct {
			name, in string
		}{
			{"Empty", ""},
			{"Blank", "   "},
			{"Short", base64.StdEncoding.EncodeToString(raw[:16])},
			{"OneShort", base64.StdEncoding.EncodeToString(raw[:31])},
			{"OneLong", base64.StdEncoding.EncodeToString(append(keyBytes(200), 7))},
			{"Long", base64.StdEncoding.EncodeToString(bytes.Repeat(raw, 2))},
			{"NotBase64", "this is not base64 at all, it is a secret!"},
			{"BadChar", "*" + base64.StdEncoding.EncodeToString(raw)[1:]},
			{"KMS", "kms:arn:aws:kms:eu-west-1:111122223333:key/secret-key-id"},
			{"Hex", hex.EncodeToString(raw)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				k, err := seal.ParseKey(tc.in)
				if err == nil {
					t.Fatalf("ParseKey(%q) = %v, want error", tc.in, k)
				}
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("ErrorCode = %q, want %q", got, want)
				}
				if !k.IsZero() {
					t.Errorf("ParseKey returned a non-zero key with its error")
				}
				if in := strings.TrimSpace(tc.in); in != "" {
					assertNotContains(t, "error", err.Error(), in, in[:min(8, len(in))])
				}
			})
		}
	})
}

func TestKey_ID(t *testing.T) {
	t.Run("Stable", func(t *testing.T) {
		// Pinned: records name their key by this id, so it must never change.
		if got, want := mustKey(t, 0).ID(), "8ef5a4a80b1225c9"; got != want {
			t.Errorf("ID() = %q, want %q", got, want)
		}
		if got, want := mustKey(t, 0).ID(), mustKey(t, 0).ID(); got != want {
			t.Errorf("ID() of the same key = %q and %q", got, want)
		}
	})
	t.Run("DiffersPerKey", func(t *testing.T) {
		if a, b := mustKey(t, 0).ID(), mustKey(t, 1).ID(); a == b {
			t.Errorf("two keys share the id %q", a)
		}
	})
	t.Run("RevealsNothing", func(t *testing.T) {
		k := mustKey(t, 0)
		if got, want := len(k.ID()), 16; got != want {
			t.Errorf("len(ID()) = %d, want %d", got, want)
		}
		assertNotContains(t, "ID()", k.ID(), keyForms(keyBytes(0))...)
	})
	t.Run("Zero", func(t *testing.T) {
		var k seal.Key
		if !k.IsZero() || k.ID() != "" {
			t.Errorf("zero Key: IsZero() = %v, ID() = %q", k.IsZero(), k.ID())
		}
	})
}

func TestNewKey(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			b := keyBytes(0)
			b = append(b, b...)[:n]
			_, err := seal.NewKey(b)
			if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
				t.Errorf("NewKey(%d bytes) error code = %q, want %q", n, got, want)
			}
		})
	}
	t.Run("Copies", func(t *testing.T) {
		b := keyBytes(0)
		k, err := seal.NewKey(b)
		if err != nil {
			t.Fatal(err)
		}
		s := mustSealer(t, k)
		sealed := mustSeal(t, s, "u", []byte("x"))
		clear(b)
		if _, err := mustSealer(t, k).Open("u", sealed); err != nil {
			t.Errorf("key changed when its source slice was cleared: %v", err)
		}
	})
}

func TestGenerateKey(t *testing.T) {
	a, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if a.IsZero() || a.ID() == b.ID() {
		t.Errorf("GenerateKey gave %v and %v", a, b)
	}
}

func TestKey_Redacted(t *testing.T) {
	raw := keyBytes(40)
	key, err := seal.ParseKey(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	forbidden := keyForms(raw)

	// holder has the key in an exported and in an unexported field: fmt cannot
	// call methods on the unexported one, so only the pointer keeps it safe.
	type holder struct {
		Key    seal.Key
		hidden seal.Key
	}
	h := holder{Key: key, hidden: key}
	s := mustSealer(t, key)
	type sealerHolder struct {
		Sealer *seal.Sealer
		hidden *seal.Sealer
	}
	sh := sealerHolder{Sealer: s, hidden: s}

	t.Run("fmt", func(t *testing.T) {
		for _, format := range []string{"%v %+v %#v %s", "%d", "%x", "%X", "%q", "%T %p", "%10.3s", "%08b"} {
			for name, arg := range map[string]any{
				"Key": key, "Pointer": &key, "Holder": h, "HolderPointer": &h,
				"Sealer": s, "SealerValue": *s, "SealerHolder": sh, "SealerHolderPointer": &sh,
			} {
				out := fmt.Sprintf(format, arg)
				assertNotContains(t, name+" as "+format, out, forbidden...)
			}
		}
		if got := fmt.Sprint(key); !strings.Contains(got, "REDACTED") || !strings.Contains(got, key.ID()) {
			t.Errorf("Sprint(key) = %q, want the id and a redacted placeholder", got)
		}
		if got := fmt.Sprint(seal.Key{}); strings.Contains(got, "REDACTED") {
			t.Errorf("Sprint(zero key) = %q, want no placeholder for a missing key", got)
		}
	})

	t.Run("slog", func(t *testing.T) {
		var buf bytes.Buffer
		for _, hd := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
			l := slog.New(hd)
			l.Info("key", "key", key, "pointer", &key, "holder", h, "any", any(key))
			l.Info("group", slog.Group("g", slog.Any("key", key)))
			l.With("key", key).Info("with")
		}
		out := buf.String()
		assertNotContains(t, "slog output", out, forbidden...)
		if !strings.Contains(out, key.ID()) {
			t.Errorf("slog output %q does not name the key id", out)
		}
	})

	t.Run("json", func(t *testing.T) {
		for name, v := range map[string]any{
			"Key":    key,
			"Holder": h,
			"Map":    map[string]seal.Key{"k": key},
			"MapKey": map[seal.Key]int{key: 1},
		} {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("Marshal %s: %v", name, err)
			}
			assertNotContains(t, name+" as JSON", string(b), forbidden...)
		}
	})

	t.Run("text", func(t *testing.T) {
		b, err := key.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		assertNotContains(t, "MarshalText", string(b), forbidden...)
	})
}

func TestNew(t *testing.T) {
	k0, k1 := mustKey(t, 0), mustKey(t, 1)
	for _, tc := range []struct {
		name    string
		current seal.Key
		older   []seal.Key
		code    tokens.Code
	}{
		{"One", k0, nil, ""},
		{"WithOlder", k0, []seal.Key{k1}, ""},
		{"Duplicate", k0, []seal.Key{k0, k1, k1}, ""},
		{"ZeroCurrent", seal.Key{}, nil, tokens.EINVALID},
		{"ZeroOlder", k0, []seal.Key{k1, {}}, tokens.EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := seal.New(tc.current, tc.older...)
			if got, want := tokens.ErrorCode(err), tc.code; got != want {
				t.Fatalf("New error = %v, want code %q", err, want)
			}
			if err == nil && s.KeyID() != tc.current.ID() {
				t.Errorf("KeyID() = %q, want %q", s.KeyID(), tc.current.ID())
			}
		})
	}
}

func TestSealer_Seal(t *testing.T) {
	key := mustKey(t, 0)
	s := mustSealer(t, key)
	plaintext := []byte(`{"access_token":"Atza|secret-access","refresh_token":"Atzr|secret-refresh"}`)

	t.Run("Layout", func(t *testing.T) {
		sealed := mustSeal(t, s, "user-1", plaintext)
		if got, want := sealed.KeyID, key.ID(); got != want {
			t.Errorf("KeyID = %q, want %q", got, want)
		}
		if got, want := len(sealed.Ciphertext), 1+12+len(plaintext)+16; got != want {
			t.Errorf("len(Ciphertext) = %d, want %d", got, want)
		}
		if got, want := sealed.Ciphertext[0], seal.FormatVersion; got != want {
			t.Errorf("version byte = %d, want %d", got, want)
		}
		assertNotContains(t, "ciphertext", string(sealed.Ciphertext), "Atza|", "Atzr|", "secret")
	})

	t.Run("SamePlaintextDiffers", func(t *testing.T) {
		a := mustSeal(t, s, "user-1", plaintext)
		b := mustSeal(t, s, "user-1", plaintext)
		if bytes.Equal(a.Ciphertext, b.Ciphertext) {
			t.Error("two seals of the same plaintext are equal")
		}
		if bytes.Equal(a.Ciphertext[1:13], b.Ciphertext[1:13]) {
			t.Error("two seals share a nonce")
		}
	})

	t.Run("DoesNotKeepPlaintext", func(t *testing.T) {
		p := bytes.Clone(plaintext)
		sealed := mustSeal(t, s, "user-1", p)
		clear(p)
		got, err := s.Open("user-1", sealed)
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Errorf("Open after clearing the input = %q, %v", got, err)
		}
	})

	t.Run("NoUser", func(t *testing.T) {
		_, err := s.Seal("", plaintext)
		if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
			t.Errorf("Seal(\"\") error code = %q, want %q", got, want)
		}
	})

	t.Run("ZeroSealer", func(t *testing.T) {
		_, err := new(seal.Sealer).Seal("user-1", plaintext)
		if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
			t.Errorf("zero Sealer: error code = %q, want %q", got, want)
		}
	})
}

func TestSealer_Open(t *testing.T) {
	oldKey, newKey, otherKey := mustKey(t, 0), mustKey(t, 1), mustKey(t, 2)
	plaintext := []byte("Atzr|the-refresh-token-itself")
	const user = "amzn1.account.USER-ONE"

	s := mustSealer(t, newKey, oldKey)
	sealed := mustSeal(t, s, user, plaintext)
	sealedOld := mustSeal(t, mustSealer(t, oldKey), user, plaintext)
	sealedOther := mustSeal(t, mustSealer(t, otherKey), user, plaintext)

	// with returns a copy of sealed changed by f.
	with := func(f func(*tokens.Sealed)) tokens.Sealed {
		c := tokens.Sealed{KeyID: sealed.KeyID, Ciphertext: bytes.Clone(sealed.Ciphertext)}
		f(&c)
		return c
	}
	flip := func(i int) tokens.Sealed {
		return with(func(c *tokens.Sealed) {
			if i < 0 {
				i += len(c.Ciphertext)
			}
			c.Ciphertext[i] ^= 0x01
		})
	}
	truncate := func(n int) tokens.Sealed {
		return with(func(c *tokens.Sealed) { c.Ciphertext = c.Ciphertext[:n] })
	}

	for _, tc := range []struct {
		name   string
		sealer *seal.Sealer
		user   string
		sealed tokens.Sealed
		ok     bool
	}{
		{"RoundTrip", s, user, sealed, true},
		{"RoundTripEmpty", s, user, mustSeal(t, s, user, nil), true},
		{"Rotation/OldKeyStillOpens", s, user, sealedOld, true},
		{"Rotation/OldKeyDropped", mustSealer(t, newKey), user, sealedOld, false},
		{"Rotation/NewKeyNotYetKnown", mustSealer(t, oldKey), user, sealed, false},
		{"AnotherUser", s, "amzn1.account.USER-TWO", sealed, false},
		{"UserPrefix", s, user[:len(user)-1], sealed, false},
		{"UserExtended", s, user + "E", sealed, false},
		{"NoUser", s, "", sealed, false},
		{"FlippedVersion", s, user, flip(0), false},
		{"FlippedNonce", s, user, flip(1), false},
		{"FlippedNonceEnd", s, user, flip(12), false},
		{"FlippedBody", s, user, flip(13), false},
		{"FlippedTag", s, user, flip(-1), false},
		{"Truncated/Empty", s, user, truncate(0), false},
		{"Truncated/VersionOnly", s, user, truncate(1), false},
		{"Truncated/NoTag", s, user, truncate(13), false},
		{"Truncated/Overhead", s, user, truncate(1 + 12 + 16), false},
		{"Truncated/LastByte", s, user, truncate(len(sealed.Ciphertext) - 1), false},
		{"Extended", s, user, with(func(c *tokens.Sealed) { c.Ciphertext = append(c.Ciphertext, 0) }), false},
		{"UnknownKeyID", s, user, with(func(c *tokens.Sealed) { c.KeyID = "0000000000000000" }), false},
		{"EmptyKeyID", s, user, with(func(c *tokens.Sealed) { c.KeyID = "" }), false},
		{"UnknownKey", s, user, sealedOther, false},
		{"KeyIDSwapped", s, user, with(func(c *tokens.Sealed) { c.KeyID = oldKey.ID() }), false},
		{"UnknownVersion", s, user, with(func(c *tokens.Sealed) { c.Ciphertext[0] = 2 }), false},
		{"ZeroSealer", new(seal.Sealer), user, sealed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.sealer.Open(tc.user, tc.sealed)
			if tc.ok {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if want := plaintext; tc.name != "RoundTripEmpty" && !bytes.Equal(got, want) {
					t.Errorf("Open = %q, want %q", got, want)
				}
				if tc.name == "RoundTripEmpty" && len(got) != 0 {
					t.Errorf("Open = %q, want empty", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("Open = %q, want error", got)
			}
			if got != nil {
				t.Errorf("Open returned %q with its error", got)
			}
			if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
				t.Errorf("ErrorCode = %q, want %q (%v)", got, want, err)
			}
			assertNotContains(t, "error", err.Error(), string(plaintext), "Atzr|", "refresh-token", "USER-")
		})
	}

	t.Run("Rotation/SealsWithNewKey", func(t *testing.T) {
		if got, want := sealed.KeyID, newKey.ID(); got != want {
			t.Errorf("KeyID = %q, want the new key's %q", got, want)
		}
	})
}

func TestSealer_Concurrent(t *testing.T) {
	s := mustSealer(t, mustKey(t, 0), mustKey(t, 1))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			user := fmt.Sprintf("user-%d", g)
			for i := range 100 {
				p := fmt.Appendf(nil, "token-%d-%d", g, i)
				sealed, err := s.Seal(user, p)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Open(user, sealed)
				if err != nil || !bytes.Equal(got, p) {
					t.Errorf("Open = %q, %v; want %q", got, err, p)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSealer_Seal(b *testing.B) {
	s := mustSealer(b, mustKey(b, 0))
	plaintext := bytes.Repeat([]byte("x"), 512)
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal("amzn1.account.USER", plaintext); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealer_Open(b *testing.B) {
	s := mustSealer(b, mustKey(b, 0))
	plaintext := bytes.Repeat([]byte("x"), 512)
	sealed := mustSeal(b, s, "amzn1.account.USER", plaintext)
	b.SetBytes(int64(len(plaintext)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open("amzn1.account.USER", sealed); err != nil {
			b.Fatal(err)
		}
	}
}
