package tokens

import "log/slog"

// redacted is what every printed, logged or marshalled Secret shows.
const redacted = "[REDACTED]"

// Secret is a credential: an access token, refresh token, authorization code or
// client secret. Its printed, logged and JSON forms are redacted so that it cannot
// leak by accident; Reveal opens it, and only the edges that send it to Amazon or
// hand it to an authorized caller call Reveal.
type Secret string

// Reveal returns the secret in clear.
func (s Secret) Reveal() string { return string(s) }

// String returns a redacted placeholder.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns a redacted placeholder, for %#v.
func (s Secret) GoString() string { return `tokens.Secret("` + s.String() + `")` }

// LogValue returns a redacted placeholder, for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON returns a redacted placeholder, for encoding/json.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalText returns a redacted placeholder, for encoders that use text forms.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
