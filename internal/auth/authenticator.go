package auth

import "context"

// Authenticator turns a bearer token into the Principal that presented it. The
// broker has one, the Verifier, and every caller passes it: gRPC and gateway
// calls in internal/server's authentication interceptor, Alexa's form requests
// in internal/reciprocal's handler. Implementations must be safe for
// concurrent use.
type Authenticator interface {
	// Verify checks rawToken, the token of an "Authorization: Bearer" header
	// (see ParseBearer) or of a form's access_token field, and returns the
	// Principal it names. Callers that need a user still check that the
	// Principal's Subject is not empty.
	//
	// It returns an EUNAUTHENTICATED error when the token is empty or is not
	// accepted (malformed, wrongly signed, expired, for another issuer or
	// audience), and an EUNAVAILABLE error when the token cannot be checked
	// now, as when the signing keys cannot be fetched. The error's message is
	// fit for the caller and never contains the token; any other error is
	// internal (EINTERNAL).
	Verify(ctx context.Context, rawToken string) (Principal, error)
}

var _ Authenticator = (*Verifier)(nil)
