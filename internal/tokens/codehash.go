package tokens

import (
	"crypto/sha256"
	"encoding/hex"
)

// CodeHash returns the identifier under which an authorization code is
// remembered: a hash, so that the code itself is never stored.
func CodeHash(code Secret) string {
	h := sha256.Sum256([]byte("reciprocal-broker/code/v1\x00" + code.Reveal()))
	return hex.EncodeToString(h[:16])
}
