package bolt

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// recordFormat is the version of the record forms below. A change that old code
// could misread takes a new number; decoding refuses numbers it does not know.
const recordFormat = 1

// linkRecord is how a tokens.Link is kept in the "links" bucket. Times are
// RFC 3339 in UTC with nanoseconds, "" for the zero time; the state is its wire
// name, so that renumbering tokens.State cannot change stored links.
type linkRecord struct {
	Format               int    `json:"format"`
	UserID               string `json:"user_id"`
	State                string `json:"state"`
	Region               string `json:"region,omitempty"`
	LinkedAt             string `json:"linked_at,omitempty"`
	LastRefreshedAt      string `json:"last_refreshed_at,omitempty"`
	AccessTokenExpiresAt string `json:"access_token_expires_at,omitempty"`
	CodeHash             string `json:"code_hash,omitempty"`
	KeyID                string `json:"key_id,omitempty"`
	Sealed               []byte `json:"sealed"`
	Version              int64  `json:"version"`
}

// claimRecord is how a claimed authorization code is kept in the "codes" bucket.
type claimRecord struct {
	Format  int    `json:"format"`
	UserID  string `json:"user_id"`
	Expires string `json:"expires"`
}

// codeClaim is a decoded claimRecord.
type codeClaim struct {
	UserID  string
	Expires time.Time
}

func encodeLink(l *tokens.Link, version int64) ([]byte, error) {
	r := linkRecord{
		Format:               recordFormat,
		UserID:               l.UserID,
		State:                l.State.String(),
		Region:               l.Region,
		LinkedAt:             formatTime(l.LinkedAt),
		LastRefreshedAt:      formatTime(l.LastRefreshedAt),
		AccessTokenExpiresAt: formatTime(l.AccessTokenExpiresAt),
		CodeHash:             l.CodeHash,
		KeyID:                l.Tokens.KeyID,
		Sealed:               l.Tokens.Ciphertext,
		Version:              version,
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("bolt: encode link of %q: %w", l.UserID, err)
	}
	return b, nil
}

// decodeLink decodes a link record into a new Link that shares no memory with v,
// which bbolt owns only for the length of its transaction.
func decodeLink(v []byte) (*tokens.Link, error) {
	var r linkRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("bolt: decode link: %w", err)
	}
	if r.Format != recordFormat {
		return nil, fmt.Errorf("bolt: decode link of %q: unknown record format %d", r.UserID, r.Format)
	}
	l := &tokens.Link{
		UserID:   r.UserID,
		Region:   r.Region,
		CodeHash: r.CodeHash,
		Tokens:   tokens.Sealed{KeyID: r.KeyID, Ciphertext: r.Sealed},
		Version:  r.Version,
	}
	switch r.State {
	case tokens.StateLinked.String():
		l.State = tokens.StateLinked
	case tokens.StateRelinkRequired.String():
		l.State = tokens.StateRelinkRequired
	default:
		return nil, fmt.Errorf("bolt: decode link of %q: unknown state %q", r.UserID, r.State)
	}
	var err error
	if l.LinkedAt, err = parseTime(r.LinkedAt); err != nil {
		return nil, fmt.Errorf("bolt: decode link of %q: linked_at: %w", r.UserID, err)
	}
	if l.LastRefreshedAt, err = parseTime(r.LastRefreshedAt); err != nil {
		return nil, fmt.Errorf("bolt: decode link of %q: last_refreshed_at: %w", r.UserID, err)
	}
	if l.AccessTokenExpiresAt, err = parseTime(r.AccessTokenExpiresAt); err != nil {
		return nil, fmt.Errorf("bolt: decode link of %q: access_token_expires_at: %w", r.UserID, err)
	}
	return l, nil
}

func encodeClaim(c codeClaim) ([]byte, error) {
	b, err := json.Marshal(claimRecord{Format: recordFormat, UserID: c.UserID, Expires: formatTime(c.Expires)})
	if err != nil {
		return nil, fmt.Errorf("bolt: encode code claim: %w", err)
	}
	return b, nil
}

func decodeClaim(v []byte) (codeClaim, error) {
	var r claimRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return codeClaim{}, fmt.Errorf("bolt: decode code claim: %w", err)
	}
	if r.Format != recordFormat {
		return codeClaim{}, fmt.Errorf("bolt: decode code claim: unknown record format %d", r.Format)
	}
	expires, err := parseTime(r.Expires)
	if err != nil {
		return codeClaim{}, fmt.Errorf("bolt: decode code claim: expires: %w", err)
	}
	return codeClaim{UserID: r.UserID, Expires: expires}, nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
