package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The Standard Webhooks headers of every webhook.
const (
	// HeaderID carries the event id, the same on every attempt.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the attempt's time in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries "v1," and the base64 of the HMAC-SHA256.
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every webhook secret.
const SecretPrefix = "whsec_"

// The length of a webhook secret's key, in bytes.
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// ErrBadSecret says that a webhook secret is not SecretPrefix followed by the
// standard base64 of 24 to 64 bytes. It never holds the secret.
var ErrBadSecret = errors.New("must be " + SecretPrefix + " followed by the standard base64 of 24 to 64 random bytes")

// Signer signs webhooks as the Standard Webhooks specification says, with the
// key of one secret. It is safe for concurrent use.
type Signer struct {
	key []byte
}

// NewSigner returns the Signer of secret, SecretPrefix followed by the
// standard base64 (padded) of 24 to 64 bytes; it returns ErrBadSecret for any
// other value, the empty one included.
func NewSigner(secret tokens.Secret) (*Signer, error) {
	enc, ok := strings.CutPrefix(secret.Reveal(), SecretPrefix)
	if !ok {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil || len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, ErrBadSecret
	}
	return &Signer{key: key}, nil
}

// Signature returns the webhook-signature of body sent as event id at
// timestamp: "v1," then the standard base64 of HMAC-SHA256, keyed by the
// secret's bytes, over "{id}.{timestamp in Unix seconds}.{body}".
func (s *Signer) Signature(id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sign sets the three Standard Webhooks headers of body, sent as event id at
// timestamp, on h.
func (s *Signer) Sign(h http.Header, id string, timestamp time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(timestamp.Unix(), 10))
	h.Set(HeaderSignature, s.Signature(id, timestamp, body))
}
