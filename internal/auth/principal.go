// Package auth turns a bearer JWT into the Principal that made a call: it checks
// the token's signature against the partner authorization server's keys (a JWKS
// URL, a PEM public key, or an HS256 secret for development), its issuer,
// audience and validity window, and reads the RFC 9068 claims sub, client_id and
// scope. Every caller of the broker, over HTTP or gRPC, passes these same checks,
// through the one Authenticator interface that Verifier implements.
package auth

import (
	"context"
	"slices"
)

// Principal is the verified identity behind a bearer token.
type Principal struct {
	// Subject is the token's sub claim: the partner's user id for a user's token,
	// the client id for a client-credentials token.
	Subject string
	// ClientID is the token's client_id claim: the OAuth client it was issued to.
	// It may be empty.
	ClientID string
	// Scopes are the space-separated entries of the token's scope claim.
	Scopes []string
}

// HasScope reports whether the principal was granted scope s.
func (p Principal) HasScope(s string) bool {
	return s != "" && slices.Contains(p.Scopes, s)
}

// principalKey is the context key of a Principal.
type principalKey struct{}

// NewContext returns a copy of ctx that carries p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal that ctx carries, and whether it carries one.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
