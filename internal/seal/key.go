package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// KeySize is the length in bytes of a sealing key: AES-256 takes 32 bytes.
const KeySize = 32

// keyIDLabel separates key ids from any other hash a key could be put through, so
// that an id is useful for nothing but naming the key.
const keyIDLabel = "reciprocal-broker/seal/key-id/v1\x00"

// redacted is what every printed, logged or marshalled key shows in place of its
// bytes.
const redacted = "[REDACTED]"

// Key is an AES-256 key that seals tokens at rest, together with its id. The id
// is the first 8 bytes of SHA-256 over a fixed label and the key, in hex: it is
// stable, names the key in sealed records so that keys can be rotated, and
// reveals nothing about the key.
//
// A Key cannot be printed, logged or marshalled by accident: its String,
// GoString, Format, LogValue, MarshalText and MarshalJSON forms show only the id
// and a redacted placeholder. It keeps no copy of the key's bytes, only the
// AES-GCM cipher made from them, and that behind two pointers, so that even fmt
// printing a Key held in an unexported field (where it cannot call Format) shows
// addresses, not the key schedule. The zero Key holds no key and is refused by
// New.
type Key struct {
	id string
	c  *keyCipher
}

// keyCipher wraps the key's cipher so that the cipher's state is two pointer
// hops from any Key or Sealer: fmt prints at most one hop of an unexported
// field's pointee (after a verb it cannot apply), and only addresses beyond it.
type keyCipher struct {
	aead cipher.AEAD
}

// NewKey returns the Key made of b, which must be exactly KeySize bytes; b is
// not kept, so the caller may clear it. It returns an EINVALID error, which never
// contains b, when the length is wrong.
func NewKey(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, tokens.Errorf(tokens.EINVALID, "encryption key must be %d bytes, not %d", KeySize, len(b))
	}
	block, err := aes.NewCipher(b)
	if err != nil {
		return Key{}, tokens.Errorf(tokens.EINTERNAL, "cannot make AES cipher")
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, tokens.Errorf(tokens.EINTERNAL, "cannot make AES-GCM")
	}
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(b)
	return Key{id: hex.EncodeToString(h.Sum(nil)[:8]), c: &keyCipher{aead: aead}}, nil
}

// ParseKey returns the Key whose base64 form is s, as BROKER_ENCRYPTION_KEY holds
// it. s may be standard or URL-safe base64, padded or not, and may carry
// surrounding white space; it must decode to exactly KeySize bytes. ParseKey
// returns an EINVALID error when s is not base64 or has the wrong length; the
// error never contains s.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, tokens.Errorf(tokens.EINVALID, "encryption key is empty")
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding,
	} {
		b, err := enc.Strict().DecodeString(s)
		if err != nil {
			continue
		}
		k, err := NewKey(b)
		clear(b)
		return k, err
	}
	return Key{}, tokens.Errorf(tokens.EINVALID, "encryption key is not base64 (standard or URL-safe, padded or raw)")
}

// GenerateKey returns a new random Key from crypto/rand, for tests and the
// sandbox; production keys come from configuration so that they outlive the
// process.
func GenerateKey() (Key, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, tokens.Errorf(tokens.EINTERNAL, "cannot read random key: %v", err)
	}
	defer clear(b[:])
	return NewKey(b[:])
}

// ID returns the key's id: 16 hex digits that name the key in sealed records and
// may be shown in logs. It is "" for the zero Key.
func (k Key) ID() string { return k.id }

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return k.c == nil }

// String returns a redacted placeholder that names only the key's id.
func (k Key) String() string {
	if k.IsZero() {
		return "seal.Key(none)"
	}
	return "seal.Key(id=" + k.id + ", " + redacted + ")"
}

// GoString returns a redacted placeholder, for %#v.
func (k Key) GoString() string {
	if k.IsZero() {
		return "seal.Key{}"
	}
	return `seal.Key{ID:"` + k.id + `", Material:"` + redacted + `"}`
}

// Format writes a redacted placeholder for every verb, so that no fmt verb
// (%d and %x included) can reach the key's bytes: %#v writes GoString, %q a
// quoted String, and every other verb String.
func (k Key) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = f.Write([]byte(k.GoString()))
	case verb == 'q':
		_, _ = f.Write([]byte(strconv.Quote(k.String())))
	default:
		_, _ = f.Write([]byte(k.String()))
	}
}

// LogValue returns the key's id and a redacted placeholder, for log/slog.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.id), slog.String("key", redacted))
}

// MarshalText returns a redacted placeholder, for encoders that use text forms.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// MarshalJSON returns the key's id and a redacted placeholder, for encoding/json.
func (k Key) MarshalJSON() ([]byte, error) {
	return []byte(`{"id":` + strconv.Quote(k.id) + `,"key":"` + redacted + `"}`), nil
}

// RingKeyID returns the key's id in a Ring, which is its ID.
func (k Key) RingKeyID() string { return k.id }

func (k Key) ringKey() {}
