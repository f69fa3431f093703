package seal

import (
	"slices"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// RingKey is one key of a Ring: a static Key or an *Envelope on a KMS key.
type RingKey interface {
	// RingKeyID returns the key's id in the Ring: a Key's ID, or
	// KMSKeyIDPrefix and the KMS key's ARN for an Envelope.
	RingKeyID() string
	ringKey()
}

// Ring seals with its first key and opens with any of its keys, static Keys and
// Envelopes mixed, as BROKER_ENCRYPTION_KEY lists them: it implements
// tokens.KeyRing. Each sealed value names the key it needs (KeyOf): a static
// key's id, "kms:" and the ARN of a KMS key (the data keys of every instance
// and process on one KMS key count as that one key), or LegacyKMSKeyID for a
// value sealed by an earlier Envelope, which the Ring's first KMS key opens.
// A Ring is made by NewRing, is immutable once made, and is safe for
// concurrent use.
type Ring struct {
	ids    []string              // every key id, the sealing key first
	static map[string]*keyCipher // static keys by id
	kms    map[string]*Envelope  // envelopes by key id
	legacy *Envelope             // the first envelope: opens legacy values
	first  RingKey
}

var _ tokens.KeyRing = (*Ring)(nil)

// NewRing returns a Ring that seals with first and opens with first and every
// key of more. A key given twice is taken once. It returns an EINVALID error
// when a key is nil, the zero Key or an Envelope not made by NewEnvelope.
func NewRing(first RingKey, more ...RingKey) (*Ring, error) {
	r := &Ring{static: map[string]*keyCipher{}, kms: map[string]*Envelope{}, first: first}
	for _, k := range append([]RingKey{first}, more...) {
		switch k := k.(type) {
		case Key:
			if k.IsZero() {
				return nil, tokens.Errorf(tokens.EINVALID, "encryption key is missing")
			}
			if _, ok := r.static[k.id]; !ok {
				r.static[k.id] = k.c
				r.ids = append(r.ids, k.id)
			}
		case *Envelope:
			if k == nil || k.key == nil {
				return nil, tokens.Errorf(tokens.EINVALID, "envelope has no data key")
			}
			id := k.RingKeyID()
			if _, ok := r.kms[id]; !ok {
				r.kms[id] = k
				r.ids = append(r.ids, id)
			}
			if r.legacy == nil {
				r.legacy = k
			}
		default:
			return nil, tokens.Errorf(tokens.EINVALID, "encryption key is missing")
		}
	}
	return r, nil
}

// SealingKeyID returns the id of the first key, the one Seal uses, and "" for
// a Ring not made by NewRing.
func (r *Ring) SealingKeyID() string {
	if len(r.ids) == 0 {
		return ""
	}
	return r.ids[0]
}

// KeyIDs returns the id of every key of the Ring, the sealing key first.
func (r *Ring) KeyIDs() []string { return slices.Clone(r.ids) }

// KeyOf returns the id of the key s needs: its KeyID for a static key,
// KMSKeyIDPrefix and the KMS key's ARN for an Envelope's value, LegacyKMSKeyID
// for an earlier Envelope's. It makes no KMS call.
func (r *Ring) KeyOf(s tokens.Sealed) string { return keyOf(s.KeyID) }

// Seal encrypts plaintext for userID under the first key, as Sealer.Seal or
// Envelope.Seal does, with their errors.
func (r *Ring) Seal(userID string, plaintext []byte) (tokens.Sealed, error) {
	switch k := r.first.(type) {
	case Key:
		return sealWith(k.c, k.id, userID, plaintext)
	case *Envelope:
		return k.Seal(userID, plaintext)
	}
	return tokens.Sealed{}, tokens.Errorf(tokens.EINTERNAL, "cannot seal: ring has no key")
}

// Open decrypts s for userID with the key it names, as Sealer.Open or
// Envelope.Open does, with their errors. It returns a *tokens.KeyMissingError
// (code EINTERNAL) naming the key id when the Ring does not hold that key.
func (r *Ring) Open(userID string, s tokens.Sealed) ([]byte, error) {
	id := keyOf(s.KeyID)
	if k, ok := r.static[id]; ok {
		return openWith(k, userID, s)
	}
	if e, ok := r.kms[id]; ok {
		return e.Open(userID, s)
	}
	if id == LegacyKMSKeyID && r.legacy != nil {
		return r.legacy.Open(userID, s)
	}
	return nil, &tokens.KeyMissingError{KeyID: id}
}
