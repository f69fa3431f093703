// Package seal encrypts the broker's tokens at rest with AES-256-GCM and binds
// each sealed value to its user, so that a stolen or copied record is useless: it
// cannot be read without the key, and a value moved to another user's record does
// not open there. Records name the key that sealed them, so keys can be rotated
// while records sealed under older keys still open.
//
// A sealed value's Ciphertext is laid out as
//
//	version (1 byte) | nonce (12 bytes, from crypto/rand) | AES-GCM ciphertext and tag
//
// and the additional authenticated data is
//
//	version (1 byte) | len(key id) (4 bytes, big endian) | key id | len(user id) (4 bytes, big endian) | user id
//
// so that the version, the key id and the user are all authenticated and no two
// (key id, user id) pairs share one encoding.
//
// Random 96-bit nonces keep the chance of a repeat below 2^-32 for up to 2^32
// seals under one key; rotate the key well before that many.
//
// Sealer holds static keys (BROKER_ENCRYPTION_KEY=base64). Envelope writes the
// same format under a data key from AWS KMS (BROKER_ENCRYPTION_KEY=kms:KEY_ID),
// with the data key, wrapped by KMS, and the KMS key's ARN as the record's key
// id. NewKMSClient builds the KMS client from the AWS configuration, and
// OpenKMS the Envelope on it. Ring mixes both kinds (BROKER_ENCRYPTION_KEY as a
// comma list): it seals with its first key, opens with any, and names the key
// each record needs, so that links can be sealed again under a new key.
package seal

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// FormatVersion is the first byte of every ciphertext this package writes. Open
// refuses any other.
const FormatVersion byte = 1

// Sizes of the parts of a ciphertext.
const (
	nonceSize = 12
	tagSize   = 16
	// overhead is what sealing adds to the plaintext's length.
	overhead = 1 + nonceSize + tagSize
)

// Sealer seals values with its current key and opens values sealed with the
// current key or any older key it was given. It implements tokens.Sealer. A
// Sealer is made by New, is immutable once made, and is safe for concurrent use;
// the zero Sealer holds no key and refuses to seal or open.
type Sealer struct {
	current string                // id of the key that seals
	keys    map[string]*keyCipher // every key that opens, by id
}

var _ tokens.Sealer = (*Sealer)(nil)

// New returns a Sealer that seals with current and opens values sealed with
// current or any of older: to rotate, make the new key current and pass the
// previous ones as older until every record has been sealed again. Keys are told
// apart by id, so a key given twice is taken once. New returns an EINVALID error
// when any key is the zero Key.
func New(current Key, older ...Key) (*Sealer, error) {
	s := &Sealer{current: current.id, keys: make(map[string]*keyCipher, 1+len(older))}
	for _, k := range append([]Key{current}, older...) {
		if k.IsZero() {
			return nil, tokens.Errorf(tokens.EINVALID, "encryption key is missing")
		}
		if _, ok := s.keys[k.id]; !ok {
			s.keys[k.id] = k.c
		}
	}
	return s, nil
}

// KeyID returns the id of the key that Seal uses. A record whose KeyID differs
// was sealed under an older key and is worth sealing again.
func (s *Sealer) KeyID() string { return s.current }

// Seal encrypts plaintext for userID under the current key with a fresh random
// nonce, so that sealing the same plaintext twice gives two different values. It
// returns an EINTERNAL error when userID is empty, because a value bound to no
// user is a bug, when the Sealer holds no key, or when the system's random
// source fails.
func (s *Sealer) Seal(userID string, plaintext []byte) (tokens.Sealed, error) {
	k, ok := s.keys[s.current]
	if !ok {
		return tokens.Sealed{}, tokens.Errorf(tokens.EINTERNAL, "cannot seal: sealer has no key")
	}
	return sealWith(k, s.current, userID, plaintext)
}

// Open decrypts sealed for userID with the key that sealed it. It returns an
// EINTERNAL error when sealed was made for another user, was altered or
// truncated, or has an unknown format version; and a *tokens.KeyMissingError
// (code EINTERNAL) naming the key id when sealed names a key the Sealer does not
// hold. Its errors never contain the plaintext or the user id.
func (s *Sealer) Open(userID string, sealed tokens.Sealed) ([]byte, error) {
	k, ok := s.keys[sealed.KeyID]
	if !ok {
		return nil, &tokens.KeyMissingError{KeyID: keyOf(sealed.KeyID)}
	}
	return openWith(k, userID, sealed)
}

// sealWith encrypts plaintext for userID under k, whose id keyID is written in
// the sealed value and bound into its additional data: the one implementation
// of sealing, shared by Sealer and Envelope. It returns an EINTERNAL error when
// userID is empty or the random source fails.
func sealWith(k *keyCipher, keyID, userID string, plaintext []byte) (tokens.Sealed, error) {
	if userID == "" {
		return tokens.Sealed{}, tokens.Errorf(tokens.EINTERNAL, "cannot seal: no user id")
	}
	out := make([]byte, 1+nonceSize, len(plaintext)+overhead)
	out[0] = FormatVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return tokens.Sealed{}, tokens.Errorf(tokens.EINTERNAL, "cannot seal: random source failed")
	}
	nonce := out[1 : 1+nonceSize]
	out = k.aead.Seal(out, nonce, plaintext, additionalData(FormatVersion, keyID, userID))
	return tokens.Sealed{KeyID: keyID, Ciphertext: out}, nil
}

// openWith decrypts sealed for userID with k, which the caller found by
// sealed.KeyID: the one implementation of opening, shared by Sealer and
// Envelope. It returns an EINTERNAL error when sealed is truncated, has an
// unknown format version, was altered, or was sealed for another user.
func openWith(k *keyCipher, userID string, sealed tokens.Sealed) ([]byte, error) {
	switch {
	case len(sealed.Ciphertext) < overhead:
		return nil, tokens.Errorf(tokens.EINTERNAL, "cannot open sealed value: truncated")
	case sealed.Ciphertext[0] != FormatVersion:
		return nil, tokens.Errorf(tokens.EINTERNAL, "cannot open sealed value: unknown format version %d", sealed.Ciphertext[0])
	}
	nonce := sealed.Ciphertext[1 : 1+nonceSize]
	body := sealed.Ciphertext[1+nonceSize:]
	plaintext, err := k.aead.Open(nil, nonce, body, additionalData(FormatVersion, sealed.KeyID, userID))
	if err != nil {
		return nil, tokens.Errorf(tokens.EINTERNAL, "cannot open sealed value: altered, or sealed for another user")
	}
	return plaintext, nil
}

// additionalData returns the bytes that bind a ciphertext to its format
// version, key and user; each string is prefixed with its length so that no two
// pairs of strings give the same bytes.
func additionalData(version byte, keyID, userID string) []byte {
	ad := make([]byte, 0, 1+4+len(keyID)+4+len(userID))
	ad = append(ad, version)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(keyID)))
	ad = append(ad, keyID...)
	ad = binary.BigEndian.AppendUint32(ad, uint32(len(userID)))
	ad = append(ad, userID...)
	return ad
}
