package auth

import "strings"

// ParseBearer returns the token of an HTTP Authorization header value of the
// form "Bearer <token>" (RFC 6750 §2.1). The scheme is matched without regard to
// case; the token must be a single token68 (RFC 7235 §2.1): letters, digits and
// "-._~+/", then optional "=" padding. It reports false for any other scheme,
// such as Basic, for an empty token, and for more than one token.
func ParseBearer(header string) (token string, ok bool) {
	scheme, rest, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(rest, " ")
	if !isToken68(token) {
		return "", false
	}
	return token, true
}

// isToken68 reports whether s is a non-empty token68.
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		if !token68Char[body[i]] {
			return false
		}
	}
	return true
}

// token68Char tells the characters of a token68 before its padding: letters,
// digits and "-._~+/". A table, as a bearer JWT of a thousand characters is
// checked on every call.
var token68Char = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", byte(c)) >= 0
	}
	return t
}()
