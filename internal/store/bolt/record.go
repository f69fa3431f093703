package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// recordFormat is the "format" field of the package's JSON records: code claims
// (claimRecord), refresh leases (leaseRecord) and reports (reportRecord). A
// change that old code could misread takes a new number; decoding refuses
// numbers it does not know. Link records are binary and have their own format
// byte, linkFormat.
const recordFormat = 1

// linkFormat is the first byte of a link record: links are read on every
// partner-token call, so they are kept in a compact binary form rather than
// JSON (decoding JSON was most of GetLink's cost; format 1 was that JSON form,
// which decodeLink no longer reads). After the format byte come, in order:
// user id, state name, region, code hash, key id and sealed tokens as
// uvarint-length-prefixed bytes; linked_at, last_refreshed_at and
// access_token_expires_at as a presence byte and varint Unix nanoseconds; the
// version as a varint. The state is its wire name, so that renumbering
// tokens.State cannot change stored links.
const linkFormat byte = 2

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

// encodeLink returns the link record of l with version in place of l.Version.
func encodeLink(l *tokens.Link, version int64) ([]byte, error) {
	b := make([]byte, 0, 64+len(l.UserID)+len(l.Region)+len(l.CodeHash)+len(l.Tokens.KeyID)+len(l.Tokens.Ciphertext))
	b = append(b, linkFormat)
	for _, f := range [][]byte{[]byte(l.UserID), []byte(l.State.String()), []byte(l.Region), []byte(l.CodeHash), []byte(l.Tokens.KeyID), l.Tokens.Ciphertext} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	for _, t := range []time.Time{l.LinkedAt, l.LastRefreshedAt, l.AccessTokenExpiresAt} {
		if t.IsZero() {
			b = append(b, 0)
			continue
		}
		b = binary.AppendVarint(append(b, 1), t.UnixNano())
	}
	return binary.AppendVarint(b, version), nil
}

// linkReader reads the fields of a link record in order, remembering the first
// error.
type linkReader struct {
	b   []byte
	err error
}

// field returns the next length-prefixed field, sharing memory with the record.
func (r *linkReader) field() []byte {
	n, k := binary.Uvarint(r.b)
	if r.err != nil || k <= 0 || uint64(len(r.b)-k) < n {
		r.err = errors.New("truncated field")
		return nil
	}
	f := r.b[k : k+int(n)]
	r.b = r.b[k+int(n):]
	return f
}

// string returns the next field as a string (a copy).
func (r *linkReader) string() string { return string(r.field()) }

func (r *linkReader) varint() int64 {
	v, k := binary.Varint(r.b)
	if r.err != nil || k <= 0 {
		r.err = errors.New("truncated number")
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *linkReader) time() time.Time {
	if r.err != nil || len(r.b) == 0 {
		r.err = errors.New("truncated time")
		return time.Time{}
	}
	present := r.b[0]
	r.b = r.b[1:]
	switch present {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, r.varint()).UTC()
	}
	r.err = errors.New("bad time marker")
	return time.Time{}
}

// decodeLink decodes a link record into a new Link that shares no memory with v,
// which bbolt owns only for the length of its transaction. A record that does
// not decode is corrupt: its error carries no tokens.Error, so it is EINTERNAL.
func decodeLink(v []byte) (*tokens.Link, error) {
	if len(v) == 0 || v[0] != linkFormat {
		return nil, errors.New("bolt: decode link: unknown record format")
	}
	r := &linkReader{b: v[1:]}
	user, state, region, codeHash, keyID, sealed := r.string(), r.string(), r.string(), r.string(), r.string(), bytes.Clone(r.field())
	l := &tokens.Link{UserID: user, Region: region, CodeHash: codeHash, Tokens: tokens.Sealed{KeyID: keyID, Ciphertext: sealed}}
	l.LinkedAt, l.LastRefreshedAt, l.AccessTokenExpiresAt = r.time(), r.time(), r.time()
	l.Version = r.varint()
	if r.err == nil && len(r.b) != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("bolt: decode link of %q: %w", user, r.err)
	}
	var err error
	if l.State, err = tokens.ParseState(state); err != nil {
		return nil, fmt.Errorf("bolt: decode link of %q: unknown state %q", user, state)
	}
	return l, nil
}

// encodeClaim returns the claim record of c.
func encodeClaim(c codeClaim) ([]byte, error) {
	b, err := json.Marshal(claimRecord{Format: recordFormat, UserID: c.UserID, Expires: formatTime(c.Expires)})
	if err != nil {
		return nil, fmt.Errorf("bolt: encode code claim: %w", err)
	}
	return b, nil
}

// decodeClaim decodes a claim record; one that does not decode is corrupt.
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

// formatTime is how the JSON records keep times: RFC 3339 in UTC with
// nanoseconds, and "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// parseTime is the inverse of formatTime.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
