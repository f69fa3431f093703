package tokens

import (
	"context"
	"time"
)

// Store keeps links and the authorization codes that made them.
//
// Implementations are safe for concurrent use, also by several processes sharing
// the same storage. Every method may return an EUNAVAILABLE error when the
// storage cannot be reached or does not answer before ctx ends, and an
// EINTERNAL error when a stored record cannot be decoded (it is corrupt) or the
// storage refuses a request as malformed (a bug or a misconfiguration). Links
// given to and returned by a Store are not shared with it. The conformance
// suite internal/store/storetest holds every implementation to this comment.
type Store interface {
	// GetLink returns the link of userID, a copy that the caller may change
	// freely. It returns ErrLinkNotFound (possibly wrapped) when the user has no
	// link; an empty user id, or one the store cannot keep, has none.
	GetLink(ctx context.Context, userID string) (*Link, error)

	// PutLink writes link when the stored version equals link.Version (0 means
	// the link must not exist yet), then sets link.Version to the new version.
	// Versions only grow: a link deleted and created again never takes a version
	// that a reader of the old link could still hold.
	//
	// link must not be nil. It returns an EINVALID error when link.Validate fails
	// or the store cannot keep link.UserID (too long for its keys), and
	// ErrVersionConflict (possibly wrapped) when another writer came first: the
	// stored version differs, or the link to update is gone. On any error nothing
	// is written and link.Version is left unchanged.
	//
	// events, when given, are stored with the change: together with it or not
	// at all (see the adapter's comment for how, where the storage has no
	// transactions), and it returns an EINVALID error when ValidateEvents
	// refuses them.
	PutLink(ctx context.Context, link *Link, events ...Event) error

	// DeleteLink removes the link of userID. It returns ErrLinkNotFound (possibly
	// wrapped) when the user has no link.
	// events, when given, are stored with the deletion as for PutLink; the
	// user's earlier events are kept.
	DeleteLink(ctx context.Context, userID string, events ...Event) error

	// ListLinks returns up to PageSize(limit) links ordered by user id as bytes,
	// starting after the user id in cursor ("" for the first page); the page's
	// Next is the cursor of the following page. It returns an EINVALID error when
	// cursor cannot be a user id of the store (too long for its keys).
	ListLinks(ctx context.Context, cursor string, limit int) (LinkPage, error)

	// ClaimCode records that the authorization code with codeHash was presented
	// for userID, and returns the user it belongs to: userID when the code is
	// new, already claimed by userID, or its earlier claim expired before now
	// (the store's clock); else the user who claimed it first. A claim that is
	// made or taken over lasts until expires.
	//
	// It returns an EINVALID error when ValidateClaim refuses codeHash and userID
	// (one of them is empty) or the store cannot keep them (too long for its
	// keys).
	ClaimCode(ctx context.Context, codeHash, userID string, expires time.Time) (owner string, err error)

	// Ping returns nil when the store can answer, and an EUNAVAILABLE error when
	// it cannot.
	Ping(ctx context.Context) error
}

// ValidateClaim returns an EINVALID error when Store.ClaimCode may not record
// a claim of codeHash for userID: either is empty. Every Store's ClaimCode
// calls it before anything else.
func ValidateClaim(codeHash, userID string) error {
	switch {
	case codeHash == "":
		return Errorf(EINVALID, "no code hash to claim")
	case userID == "":
		return Errorf(EINVALID, "no user id to claim the code for")
	}
	return nil
}

// Page sizes of every paged read of the broker's stores: ListLinks here, and
// the outbox's pending reports.
const (
	// DefaultPageSize is the page size asked for with a limit of zero or less.
	DefaultPageSize = 100
	// MaxPageSize is the most items one page holds.
	MaxPageSize = 1000
)

// PageSize returns how many items a page holds when limit is asked for:
// DefaultPageSize for zero or less, at most MaxPageSize. It is the one rule of
// page sizes, for every store and every paged read.
func PageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// LinkPage is one page of ListLinks.
type LinkPage struct {
	Links []*Link
	// Next is the cursor of the following page: the last user id of this page
	// when more links follow, or "" after the last one.
	Next string
}
