package tokens

import (
	"context"
	"time"
)

// Leaser is an optional ability of a Store shared by several processes: a short
// lease on a user's refresh, so that across all processes at most one refreshes
// a user at a time. The others wait for its result by re-reading the link. A
// crashed holder's lease expires by itself.
//
// A leaser compares the times it is given, never its own clock: a lease that
// ends at until is held at now == until and free at any now after it. Leases of
// different users are independent. Implementations are safe for concurrent
// use, also by several processes sharing the storage. Every method may return
// an EUNAVAILABLE error when the storage cannot be reached or does not answer
// before ctx ends, and an EINTERNAL error when a stored lease cannot be decoded.
// The conformance suite internal/store/storetest (RunLeases) holds every
// implementation to this comment.
type Leaser interface {
	// AcquireLease takes the refresh lease of userID for owner until until, when
	// nobody holds it, its holder's lease ended before now, or owner holds it
	// already (which extends it to until). It reports whether owner holds the
	// lease: another owner's lease is the answer false, not an error.
	//
	// It returns an EINVALID error when ValidateLease refuses userID and owner
	// (one of them is empty) or the store cannot keep userID (too long for its
	// keys).
	AcquireLease(ctx context.Context, userID, owner string, now, until time.Time) (bool, error)

	// ReleaseLease gives the lease of userID up if owner holds it. When another
	// owner holds it, or nobody (an empty userID or owner included), it does
	// nothing and returns nil.
	ReleaseLease(ctx context.Context, userID, owner string) error
}

// ValidateLease returns an EINVALID error when Leaser.AcquireLease may not
// lease userID's refresh to owner: either is empty. Every Leaser's AcquireLease
// calls it before anything else.
func ValidateLease(userID, owner string) error {
	switch {
	case userID == "":
		return Errorf(EINVALID, "no user id to lease")
	case owner == "":
		return Errorf(EINVALID, "no owner to hold the lease")
	}
	return nil
}
