package tokens

import (
	"context"
	"time"
)

// Grant is what Login with Amazon issues: an access token, the refresh token that
// replaces the previous one, and when the access token expires.
type Grant struct {
	AccessToken  Secret
	RefreshToken Secret
	Expiry       time.Time
}

// Exchanger talks to Login with Amazon. Implementations are safe for concurrent
// use.
type Exchanger interface {
	// Exchange trades an authorization code for a grant. It returns
	// ErrInvalidGrant (wrapped) when LWA refused the code, an empty code
	// included; an EUNAVAILABLE error when LWA could not be reached, or kept
	// failing, within ctx's deadline; and an EINTERNAL error when LWA refused
	// the client's credentials or request (a misconfiguration).
	Exchange(ctx context.Context, code Secret) (Grant, error)

	// Refresh trades a refresh token for a new grant. A grant with an empty
	// RefreshToken means LWA did not rotate it and the old one stays valid.
	// Errors are as for Exchange; ErrInvalidGrant means LWA no longer honours
	// refreshToken (revoked, or replaced by a rotation), so the user must link
	// again.
	Refresh(ctx context.Context, refreshToken Secret) (Grant, error)
}
