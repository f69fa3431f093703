package tokens

import (
	"context"
	"time"
)

// State is where a link stands with Login with Amazon.
type State int

// The states of a link.
const (
	// StateLinked means the stored refresh token is believed good.
	StateLinked State = iota + 1
	// StateRelinkRequired means LWA refused the refresh token (invalid_grant) or a
	// rotated token was lost: no LWA call is made for the user until Alexa hands
	// over a new authorization code.
	StateRelinkRequired
)

// String returns the state's wire name, as the contract spells it.
func (s State) String() string {
	switch s {
	case StateLinked:
		return "LINKED"
	case StateRelinkRequired:
		return "RELINK_REQUIRED"
	}
	return "UNKNOWN"
}

// ParseState returns the state whose wire name is name, as String spells it, or
// an EINVALID error for any other name. Stores keep states by name, so that
// renumbering State cannot change stored links.
func ParseState(name string) (State, error) {
	for _, s := range []State{StateLinked, StateRelinkRequired} {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, Errorf(EINVALID, "unknown link state %q", name)
}

// Link is one partner user's link to Login with Amazon: the user's LWA tokens,
// sealed, and what operators may see about them.
type Link struct {
	// UserID is the partner's user id (the JWT's sub).
	UserID string
	// State says whether the tokens are usable.
	State State
	// Region is the Alexa API region ("NA", "EU", "FE"), or "" for the default.
	Region string
	// LinkedAt is when the last authorization code was exchanged.
	LinkedAt time.Time
	// LastRefreshedAt is when LWA last issued tokens for the link.
	LastRefreshedAt time.Time
	// AccessTokenExpiresAt is when the stored access token expires.
	AccessTokenExpiresAt time.Time
	// CodeHash identifies the authorization code that made the link (a hash, never
	// the code), so that Alexa's retry of the same hand-over is answered without a
	// second exchange.
	CodeHash string
	// Tokens holds the access and refresh tokens, sealed to UserID.
	Tokens Sealed
	// Version is the store's compare-and-set counter: 0 for a link not stored yet.
	// Store.PutLink sets it.
	Version int64
}

// Validate returns an EINVALID error when the link cannot be stored.
func (l *Link) Validate() error {
	switch {
	case l.UserID == "":
		return Errorf(EINVALID, "link has no user id")
	case l.State != StateLinked && l.State != StateRelinkRequired:
		return Errorf(EINVALID, "link has unknown state %d", l.State)
	case len(l.Tokens.Ciphertext) == 0:
		return Errorf(EINVALID, "link has no sealed tokens")
	}
	return nil
}

// Sealed is a value encrypted and bound to one user. KeyID names the key that
// sealed it, so keys can be rotated while old records still open.
type Sealed struct {
	KeyID      string
	Ciphertext []byte
}

// Sealer encrypts values at rest, bound to a user: what is sealed for one user does
// not open for another. Implementations are safe for concurrent use.
type Sealer interface {
	// Seal encrypts plaintext for userID.
	Seal(userID string, plaintext []byte) (Sealed, error)
	// Open decrypts s for userID. It returns an EINTERNAL error when s was sealed
	// for another user, altered, or sealed with a key the sealer does not hold.
	Open(userID string, s Sealed) ([]byte, error)
}

// Grant is what Login with Amazon issues: an access token, the refresh token that
// replaces the previous one, and when the access token expires.
type Grant struct {
	AccessToken  Secret
	RefreshToken Secret
	Expiry       time.Time
}

// Exchanger talks to Login with Amazon. Implementations are safe for concurrent use.
type Exchanger interface {
	// Exchange trades an authorization code for a grant. It returns
	// ErrInvalidGrant (wrapped) when LWA refused the code, and an EUNAVAILABLE
	// error when LWA could not be reached within ctx's deadline.
	Exchange(ctx context.Context, code Secret) (Grant, error)
	// Refresh trades a refresh token for a new grant. A grant with an empty
	// RefreshToken means LWA did not rotate it and the old one stays valid. Errors
	// are as for Exchange.
	Refresh(ctx context.Context, refreshToken Secret) (Grant, error)
}

// Page sizes of ListLinks.
const (
	// DefaultPageSize is the page size asked for with a limit of zero or less.
	DefaultPageSize = 100
	// MaxPageSize is the most links one page holds.
	MaxPageSize = 1000
)

// PageSize returns how many links a page of ListLinks holds when limit is asked
// for: DefaultPageSize for zero or less, at most MaxPageSize.
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
	// Next is the cursor of the following page, or "" after the last one.
	Next string
}

// Store keeps links and the authorization codes that made them. Implementations
// are safe for concurrent use, also by several processes sharing the same storage.
type Store interface {
	// GetLink returns the link of userID, or ErrLinkNotFound.
	GetLink(ctx context.Context, userID string) (*Link, error)
	// PutLink writes link when the stored version equals link.Version (0 means the
	// link must not exist yet), then sets link.Version to the new version. It
	// returns ErrVersionConflict when another writer came first, and an EINVALID
	// error when link.Validate fails.
	PutLink(ctx context.Context, link *Link) error
	// DeleteLink removes the link of userID, or returns ErrLinkNotFound.
	DeleteLink(ctx context.Context, userID string) error
	// ListLinks returns up to PageSize(limit) links ordered by user id, starting
	// after the user id in cursor ("" for the first page).
	ListLinks(ctx context.Context, cursor string, limit int) (LinkPage, error)
	// ClaimCode records that the authorization code with codeHash was presented
	// for userID, and returns the user it belongs to: userID when the code is new
	// or its earlier claim has passed expires, else the user who claimed it first.
	ClaimCode(ctx context.Context, codeHash, userID string, expires time.Time) (owner string, err error)
	// Ping returns an EUNAVAILABLE error when the store cannot answer.
	Ping(ctx context.Context) error
}

// Leaser is an optional ability of a Store shared by several processes: a short
// lease on a user's refresh, so that across all processes at most one refreshes
// a user at a time. The others wait for its result by re-reading the link. A
// crashed holder's lease expires by itself.
type Leaser interface {
	// AcquireLease takes the refresh lease of userID for owner until until, when
	// nobody holds it or its holder's lease ended before now; it reports whether
	// owner holds the lease. Taking a lease owner already holds extends it.
	AcquireLease(ctx context.Context, userID, owner string, now, until time.Time) (bool, error)
	// ReleaseLease gives the lease up if owner holds it; it is not an error when
	// owner does not.
	ReleaseLease(ctx context.Context, userID, owner string) error
}
