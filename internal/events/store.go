package events

import (
	"context"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// State is where an event stands in the webhook outbox.
type State int

// The states of a webhook.
const (
	// StatePending: stored, not delivered yet.
	StatePending State = iota + 1
	// StateDelivered: the receiver answered 2xx.
	StateDelivered
	// StateGivenUp: retried until the deadline; still in the audit trail.
	StateGivenUp
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StatePending:
		return "PENDING"
	case StateDelivered:
		return "DELIVERED"
	case StateGivenUp:
		return "GIVEN_UP"
	}
	return "UNKNOWN"
}

// Webhook is one event in the webhook outbox and its delivery record. Stores
// create it, PENDING, when they store an event whose Notify is set.
type Webhook struct {
	// Event is what is sent; its ID is the webhook-id of every attempt.
	Event tokens.Event
	// State says whether it is still to be sent.
	State State
	// Attempts counts the POSTs made.
	Attempts int
	// NextAttemptAt is when the deliverer may try again; zero at first.
	NextAttemptAt time.Time
	// LastError says why the last attempt failed.
	LastError string
	// Version is the store's compare-and-set counter.
	Version int64
}

// Store is the webhook outbox. Implementations are safe for concurrent use,
// also by several processes sharing the same storage. Every method may return
// an EUNAVAILABLE error when the storage cannot be reached, and an EINTERNAL
// error when a stored record is corrupt.
type Store interface {
	// DueWebhooks returns, for up to tokens.PageSize(limit) users, the oldest
	// PENDING webhook of each user (by event OccurredAt, then ID) when its
	// NextAttemptAt is not after now. A user whose oldest webhook waits for a
	// retry takes no place, so one failing user never hides the others, and a
	// user's newer events wait behind the older one.
	DueWebhooks(ctx context.Context, now time.Time, limit int) ([]*Webhook, error)

	// ClaimWebhooks takes the right to send userID's webhooks for owner until
	// until, when nobody holds it or its holder's claim ended before now; it
	// reports whether owner holds it. Taking a claim owner holds extends it.
	// It returns an EINVALID error for an empty user or owner.
	ClaimWebhooks(ctx context.Context, userID, owner string, now, until time.Time) (bool, error)

	// ReleaseWebhooks gives the claim up if owner holds it; it is not an error
	// when owner does not.
	ReleaseWebhooks(ctx context.Context, userID, owner string) error

	// PutWebhook writes w when the stored version equals w.Version, then sets
	// w.Version to the new version. A webhook stored DELIVERED or GIVEN_UP
	// leaves the outbox. It returns ErrVersionConflict when another writer came
	// first, and ErrWebhookNotFound when the event was removed (retention).
	PutWebhook(ctx context.Context, w *Webhook) error

	// WebhookBacklog returns how many webhooks are PENDING and when the oldest
	// of them occurred (zero when none), without reading every event.
	WebhookBacklog(ctx context.Context) (pending int, oldest time.Time, err error)
}

// CheckClaim returns an EINVALID error when Store.ClaimWebhooks may not give
// userID's webhooks to owner: either is empty. Every Store's ClaimWebhooks
// calls it first.
func CheckClaim(userID, owner string) error {
	switch {
	case userID == "":
		return tokens.Errorf(tokens.EINVALID, "webhook claim without a user id")
	case owner == "":
		return tokens.Errorf(tokens.EINVALID, "webhook claim without an owner")
	}
	return nil
}

// Sentinel errors of the webhook outbox, possibly wrapped with context.
var (
	// ErrWebhookNotFound is returned when the webhook's event is gone.
	ErrWebhookNotFound = &tokens.Error{Code: tokens.ENOTFOUND, Message: "webhook not found"}
	// ErrVersionConflict is returned by Store.PutWebhook when the stored
	// version is not the one the caller read.
	ErrVersionConflict = &tokens.Error{Code: tokens.ECONFLICT, Message: "webhook was changed concurrently"}
)
