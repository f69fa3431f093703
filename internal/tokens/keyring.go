package tokens

import "fmt"

// KeyRing is a Sealer that holds several keys: it seals with the first and
// opens with any of them, so that keys can be rotated while links sealed under
// older keys still open. Keys are named by ids that may be shown in logs,
// metrics and errors: they never reveal a key. Implementations are safe for
// concurrent use; none of the methods below returns an error or calls a key
// service.
type KeyRing interface {
	Sealer

	// SealingKeyID returns the id of the key that Seal uses: the first key.
	SealingKeyID() string

	// KeyIDs returns the id of every key the ring holds, the sealing key first.
	KeyIDs() []string

	// KeyOf returns the id of the key that s needs in order to open, in the
	// form SealingKeyID and KeyIDs use, whether or not the ring holds that key.
	// Links whose KeyOf differs from SealingKeyID are worth sealing again.
	KeyOf(s Sealed) string
}

// KeyMissingError is what a KeyRing's Open returns for a value sealed under a
// key the ring does not hold. Its code is EINTERNAL (the broker is
// misconfigured, not the caller's request wrong) and its message names the key
// id it needs, which callers and operators may see: a key id reveals nothing
// about the key.
type KeyMissingError struct {
	// KeyID is the id of the key the value needs, as KeyRing.KeyOf names it.
	KeyID string
}

// Error says which key is missing.
func (e *KeyMissingError) Error() string { return e.message() }

// Unwrap returns the application error that callers see: EINTERNAL with the
// message of Error.
func (e *KeyMissingError) Unwrap() error { return &Error{Code: EINTERNAL, Message: e.message()} }

func (e *KeyMissingError) message() string {
	return fmt.Sprintf("the tokens are sealed under key id %s, which is not configured", e.KeyID)
}
