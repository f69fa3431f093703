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
		c := body[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
