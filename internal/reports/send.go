package reports

import (
	"context"
	"fmt"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Sender delivers one report to the Alexa Health profile API with the user's LWA
// access token. Implementations are safe for concurrent use.
type Sender interface {
	// Send posts r to the API host of region, once; "" or a region it does not
	// know means the default host. It returns:
	//   - nil when the API answered 2xx;
	//   - ErrTokenRejected (wrapped) on 401, and when accessToken is empty;
	//   - ErrPermissionWithdrawn (wrapped) on 403;
	//   - a *RetryError, not wrapped, for a failure that may pass: 429 and 5xx
	//     (with the Retry-After wait), and, with Status 0, a time-out, a
	//     network failure or ctx ending;
	//   - an EINVALID error for r nil and for any other answer, which retrying
	//     cannot cure.
	//
	// It never returns an EUNAVAILABLE error: an API that cannot be reached is
	// a *RetryError.
	Send(ctx context.Context, region string, accessToken tokens.Secret, r *Report) error
}

// Errors a Sender returns.
var (
	// ErrTokenRejected means the API refused the access token (401): the broker
	// refreshes the token once and tries once more.
	ErrTokenRejected = &tokens.Error{Code: tokens.EUNAUTHENTICATED, Message: "Alexa refused the access token"}
	// ErrPermissionWithdrawn means the skill was disabled or the user withdrew
	// its permission (403): the report fails and is not retried.
	ErrPermissionWithdrawn = &tokens.Error{Code: tokens.EPERMISSION, Message: "the skill was disabled or its permission withdrawn"}
)

// RetryError is a failure that may pass: throttling (429), a server error
// (5xx), a time-out or a network failure. The Deliverer tries again no sooner
// than After.
type RetryError struct {
	// Status is the HTTP status, or 0 when no answer came.
	Status int
	// After is the wait the API asked for (Retry-After), or 0.
	After time.Duration
	// Reason says what happened, without any secret.
	Reason string
}

// Error describes the failure.
func (e *RetryError) Error() string {
	if e.Status == 0 {
		return "Alexa API unreachable: " + e.Reason
	}
	return fmt.Sprintf("Alexa API answered %d: %s", e.Status, e.Reason)
}
