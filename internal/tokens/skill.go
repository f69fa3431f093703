package tokens

import (
	"context"
	"strings"
)

// DefaultSkillID names the one skill of a broker configured without a skills
// file, and the skill whose links were stored before skills existed.
const DefaultSkillID = "default"

// Links belong to a skill and a user: the same partner user may be linked in
// several skills (a baby-activity skill and a smart-home skill, or one per
// market), each link with its own tokens, refreshes and state. A Store holds
// the links of one skill; the adapters hand out one view of their storage per
// skill (ForSkill), and a Service serves one skill. The DefaultSkillID view of
// a storage is the storage as it was before skills existed, so links written
// then are the default skill's links.

// SealSubject returns what a link's sealed tokens are bound to: the user id
// alone in the default skill (so that links sealed before skills existed still
// open), else the skill id and the user id, so that tokens copied from one
// skill's link to another skill's link of the same user do not open either.
// An empty skillID is the default skill. User ids never hold a NUL byte
// (CheckUserID), which keeps the two forms apart.
func SealSubject(skillID, userID string) string {
	if skillID == "" || skillID == DefaultSkillID {
		return userID
	}
	return skillID + "\x00" + userID
}

// CheckUserID returns an EINVALID error when id cannot name a partner user:
// it is empty or holds a NUL byte. The edges (the API, the hand-overs) call
// it before a user id reaches a Service.
func CheckUserID(id string) error {
	switch {
	case id == "":
		return Errorf(EINVALID, "user_id is empty")
	case strings.IndexByte(id, 0) >= 0:
		return Errorf(EINVALID, "user_id holds a NUL byte")
	}
	return nil
}

// SkillLister is an optional ability of a storage shared by several skills:
// which skills have links in it, so that a walk over every link (a reseal, a
// key check, counts) also finds the links of a skill no longer configured.
// Every view of the storage answers alike.
type SkillLister interface {
	// Skills returns the ids of the skills with links in the storage (it
	// may name skills whose links are all gone since), each once. It returns
	// an EUNAVAILABLE error when the storage cannot be read and an EINTERNAL
	// error when what it reads is corrupt.
	Skills(ctx context.Context) ([]string, error)
}
