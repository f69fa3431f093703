package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// maxNumericDate is the latest time a NumericDate claim may name:
// 9999-12-31T23:59:59Z. Later values, and negative ones, are refused rather
// than converted with a loss.
const maxNumericDate = 253402300799

// claims are a token's claims, read by their exact names. encoding/json into a
// struct matches names without regard to case, so that a token carrying both
// scope and SCOPE would let either win; claims therefore reads the payload as
// an object of raw values, refuses a token in which two names differ only in
// case (or are equal), and picks claims out by their exact names. The
// registered claims the verifier checks are read when the payload is decoded,
// with their JSON types enforced (exp, nbf and iat must be numbers, iss and sub
// strings, aud a string or a list of strings); the profile's claims are read
// after the signature was verified.
type claims struct {
	raw           map[string]json.RawMessage
	iss, sub      string
	aud           jwt.ClaimStrings
	exp, nbf, iat *jwt.NumericDate
}

var _ jwt.Claims = (*claims)(nil)

// UnmarshalJSON reads the payload b, which jwt.Parser has found to be valid
// JSON. Its errors are *refusal, naming the claim at fault.
func (c *claims) UnmarshalJSON(b []byte) error {
	raw, r := readObject(b)
	if r != nil {
		return r
	}
	*c = claims{raw: raw}
	var ok bool
	for _, s := range []struct {
		name string
		dst  *string
	}{{"iss", &c.iss}, {"sub", &c.sub}} {
		if *s.dst, _, ok = c.str(s.name); !ok {
			return &refusal{reason: "token claim " + s.name + " is not a string", claim: s.name}
		}
	}
	if c.aud, ok = c.strings("aud"); !ok {
		return &refusal{reason: "token claim aud is neither a string nor a list of strings", claim: "aud"}
	}
	for _, d := range []struct {
		name string
		dst  **jwt.NumericDate
	}{{"exp", &c.exp}, {"nbf", &c.nbf}, {"iat", &c.iat}} {
		if *d.dst, r = c.date(d.name); r != nil {
			return r
		}
	}
	return nil
}

// readObject reads the JSON object b into its members, and refuses it when it
// is not an object or when two of its names are equal or differ only in case
// (by Unicode simple case folding, as encoding/json matches names).
func readObject(b []byte) (map[string]json.RawMessage, *refusal) {
	malformed := &refusal{reason: "token payload is not a JSON object"}
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, malformed
	}
	members := make(map[string]json.RawMessage)
	folded := make(map[string]string)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, malformed
		}
		name, ok := t.(string)
		if !ok {
			return nil, malformed
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, malformed
		}
		key := foldName(name)
		if first, dup := folded[key]; dup {
			if first == name {
				return nil, &refusal{reason: "token claim " + quoteName(name) + " is given twice", claim: shortName(name)}
			}
			return nil, &refusal{reason: "token claims " + quoteName(first) + " and " + quoteName(name) + " differ only in case", claim: shortName(first)}
		}
		folded[key] = name
		members[name] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, malformed
	}
	return members, nil
}

// foldName returns name with every rune replaced by the smallest rune of its
// Unicode simple case folding orbit, so that two names are equal after
// foldName exactly when they differ only in case: "SUB", "sub" and "ſub" (a
// long s) all fold alike.
func foldName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for _, r := range name {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// quoteName returns a claim name fit for an error message: shortened by
// shortName, quoted, control characters escaped.
func quoteName(name string) string { return strconv.Quote(shortName(name)) }

// shortName returns name cut to at most 40 bytes, on a rune boundary, with an
// ellipsis when it was cut: a made-up claim name may be as long as the token.
func shortName(name string) string {
	if len(name) <= 40 {
		return name
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}

// str returns the string claim name; present says whether the token has the
// claim, ok whether it is absent or a JSON string.
func (c *claims) str(name string) (v string, present, ok bool) {
	raw, present := c.raw[name]
	if !present {
		return "", false, true
	}
	if err := json.Unmarshal(raw, &v); err != nil || raw[0] != '"' {
		return "", true, false
	}
	return v, true, true
}

// strings returns the claim name read as a string or a list of strings (a
// string gives a list of one); ok is false for any other JSON type. An absent
// claim gives an empty list.
func (c *claims) strings(name string) (jwt.ClaimStrings, bool) {
	raw, present := c.raw[name]
	if !present {
		return nil, true
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false
		}
		return jwt.ClaimStrings{s}, true
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, false
		}
		out := make(jwt.ClaimStrings, 0, len(list))
		for _, e := range list {
			var s string
			if len(e) == 0 || e[0] != '"' || json.Unmarshal(e, &s) != nil {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// scopes returns the scopes of the claim name: the space-separated entries of
// a string, or the non-empty entries of a list of strings; ok is false for any
// other JSON type. An absent claim grants none.
func (c *claims) scopes(name string) ([]string, bool) {
	list, ok := c.strings(name)
	if !ok {
		return nil, false
	}
	if raw := c.raw[name]; len(raw) > 0 && raw[0] == '"' {
		return strings.Fields(list[0]), true
	}
	out := list[:0:0]
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, true
}

// errNotNumber is the cause of a NumericDate claim that is not a number.
var errNotNumber = errors.New("not a JSON number")

// date reads the NumericDate claim name (RFC 7519 §2): a JSON number of
// seconds since the epoch, possibly with a fraction. A string, even one of
// digits, is refused, as is a number before the epoch or after year 9999.
func (c *claims) date(name string) (*jwt.NumericDate, *refusal) {
	raw, present := c.raw[name]
	if !present {
		return nil, nil
	}
	f, err := numericDate(raw)
	if err != nil {
		reason := "token claim " + name + " is not a number"
		if !errors.Is(err, errNotNumber) {
			reason = "token claim " + name + " is out of range"
		}
		return nil, &refusal{reason: reason, claim: name}
	}
	sec := int64(f)
	nsec := int64((f - float64(sec)) * 1e9)
	return jwt.NewNumericDate(time.Unix(sec, nsec)), nil
}

// numericDate parses raw as a JSON number of seconds within [0, maxNumericDate].
func numericDate(raw json.RawMessage) (float64, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, errNotNumber
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return 0, errors.New("out of range")
	}
	return f, nil
}

// GetExpirationTime returns the exp claim, or nil.
func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.exp, nil }

// GetNotBefore returns the nbf claim, or nil.
func (c *claims) GetNotBefore() (*jwt.NumericDate, error) { return c.nbf, nil }

// GetIssuedAt returns the iat claim, or nil.
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error) { return c.iat, nil }

// GetIssuer returns the iss claim, or "".
func (c *claims) GetIssuer() (string, error) { return c.iss, nil }

// GetSubject returns the sub claim, or "".
func (c *claims) GetSubject() (string, error) { return c.sub, nil }

// GetAudience returns the aud claim, or nil.
func (c *claims) GetAudience() (jwt.ClaimStrings, error) { return c.aud, nil }
