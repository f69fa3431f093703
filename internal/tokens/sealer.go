package tokens

// Sealed is a value encrypted and bound to one user. KeyID names the key that
// sealed it, so keys can be rotated while old records still open.
type Sealed struct {
	KeyID      string
	Ciphertext []byte
}

// Sealer encrypts values at rest, bound to a user: what is sealed for one user
// does not open for another. Implementations are safe for concurrent use.
type Sealer interface {
	// Seal encrypts plaintext for userID and names the key it used in the
	// result's KeyID. It keeps no reference to plaintext, which the caller may
	// clear afterwards. It returns an EINTERNAL error when userID is empty (a
	// value bound to no user is a bug) or the sealer cannot seal (it holds no
	// key, or the random source failed).
	Seal(userID string, plaintext []byte) (Sealed, error)

	// Open decrypts s for userID into a new slice that the caller owns and may
	// clear. It returns an EINTERNAL error when s was sealed for another user,
	// altered, truncated, or sealed with a key the sealer does not hold, and an
	// EUNAVAILABLE error when a key service it needs (KMS) cannot be reached.
	Open(userID string, s Sealed) ([]byte, error)
}
