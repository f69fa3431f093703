package tokens

import "time"

// Link is one partner user's link to Login with Amazon: the user's LWA tokens,
// sealed, and what operators may see about them.
type Link struct {
	// UserID is the partner's user id (the JWT's sub).
	UserID string
	// SkillID is the skill the link belongs to. Stores set it on every link
	// they return to the skill of their view; "" in a link given to a store
	// means the store's skill.
	SkillID string
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
	// Tokens holds the access and refresh tokens, sealed to
	// SealSubject(SkillID, UserID).
	Tokens Sealed
	// Version is the store's compare-and-set counter: 0 for a link not stored yet.
	// Store.PutLink sets it.
	Version int64
}

// Validate returns an EINVALID error when the link cannot be stored: it has no
// user id, no known state, or no sealed tokens. Every Store's PutLink calls it.
func (l *Link) Validate() error {
	switch {
	case l.UserID == "":
		return Errorf(EINVALID, "link has no user id")
	case l.State.Validate() != nil:
		return Errorf(EINVALID, "link has unknown state %d", l.State)
	case len(l.Tokens.Ciphertext) == 0:
		return Errorf(EINVALID, "link has no sealed tokens")
	}
	return nil
}
