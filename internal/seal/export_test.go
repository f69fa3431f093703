package seal

import (
	"encoding/base64"
	"strings"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// SealLegacy seals plaintext for userID under e's data key as earlier versions
// of Envelope did, with a KeyID of LegacyEnvelopeKeyPrefix and the wrapped data
// key alone, so that tests can make the records those versions left in stores.
func SealLegacy(e *Envelope, userID string, plaintext []byte) (tokens.Sealed, error) {
	blob64, _, _ := strings.Cut(strings.TrimPrefix(e.current, EnvelopeKeyPrefix), ":")
	if _, err := base64.RawURLEncoding.DecodeString(blob64); err != nil {
		return tokens.Sealed{}, err
	}
	return sealWith(e.key, LegacyEnvelopeKeyPrefix+blob64, userID, plaintext)
}
