// Package auth turns a bearer JWT into the Principal that made a call: it checks
// the token's signature against the partner authorization server's keys (a JWKS
// URL, a PEM public key, or an HS256 secret for development), its issuer,
// audience and validity window, and reads sub, the client and the scopes by a
// claim profile: RFC 9068's client_id and scope, or where Cognito, Auth0, Okta,
// Keycloak or Entra ID put them (profile.go). Claims are read by their exact
// names (claims.go). Every caller of the broker, over HTTP or gRPC, passes
// these same checks, through the one Authenticator interface that Verifier
// implements.
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
	// ClientID is the OAuth client the token was issued to, read from the
	// profile's client claim (client_id, azp, cid or appid). A verified token
	// always names one.
	ClientID string
	// Scopes are the scopes (or app roles) of the profile's scope claims,
	// joined: the space-separated entries of a string claim, the entries of a
	// list.
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
	return &principalContext{Context: ctx, p: p}
}

// principalContext is a context that carries a Principal: one allocation per
// call, where context.WithValue and the Principal boxed in its value are two.
type principalContext struct {
	context.Context
	p Principal
}

// Value returns the *Principal for principalKey, and asks the parent for any
// other key.
func (c *principalContext) Value(key any) any {
	if _, ok := key.(principalKey); ok {
		return &c.p
	}
	return c.Context.Value(key)
}

// FromContext returns the Principal that ctx carries, and whether it carries one.
func FromContext(ctx context.Context) (Principal, bool) {
	if p, ok := ctx.Value(principalKey{}).(*Principal); ok {
		return *p, true
	}
	return Principal{}, false
}
