package reports

import (
	"slices"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Kind says what a delivery carries to Alexa. Profile reports and Alexa events
// are two kinds of one delivery: one outbox, one deliverer, the same claims,
// backoff and states.
type Kind string

// The kinds of delivery. Stores keep a kind by its name; the empty kind is a
// profile report (reports stored before kinds existed have none).
const (
	// KindProfileReport is a baby-activity profile report for the Alexa
	// Health profile API: the user's whole set of profiles, so a newer one
	// supersedes the older ones still pending.
	KindProfileReport Kind = "profile_report"
	// KindAlexaEvent is an Alexa event (a ChangeReport, an AddOrUpdateReport,
	// a doorbell press...) for the Alexa Event Gateway: never superseded, a
	// user's events delivered in the order they were accepted.
	KindAlexaEvent Kind = "alexa_event"
)

// kinds lists every Kind.
var kinds = []Kind{KindProfileReport, KindAlexaEvent}

// Validate returns an EINVALID error for a kind that is neither one of the
// constants nor empty.
func (k Kind) Validate() error {
	if k != "" && !slices.Contains(kinds, k) {
		return tokens.Errorf(tokens.EINVALID, "unknown delivery kind %q", string(k))
	}
	return nil
}

// Supersedes reports whether a delivery of the kind makes the older pending
// ones of its lane moot: true for profile reports, false for Alexa events.
func (k Kind) Supersedes() bool { return k == KindProfileReport || k == "" }

// Lane names the queue a delivery waits in: one per kind, skill and user.
// A lane's deliveries are sent one at a time and in order (under the lane's
// delivery claim), and lanes are served fairly. The lane of the default
// skill's profile reports is the user id alone, as it was before skills and
// kinds existed, so that reports stored then keep their place; every other
// lane is the kind, the skill and the user, NUL-separated (user ids hold no
// NUL, see tokens.CheckUserID).
func Lane(kind Kind, skillID, userID string) string {
	if kind == "" {
		kind = KindProfileReport
	}
	if kind == KindProfileReport && (skillID == "" || skillID == tokens.DefaultSkillID) {
		return userID
	}
	if skillID == "" {
		skillID = tokens.DefaultSkillID
	}
	return string(kind) + "\x00" + skillID + "\x00" + userID
}

// Lane returns the lane of r: Lane(r.Kind, r.SkillID, r.UserID).
func (r *Report) Lane() string { return Lane(r.Kind, r.SkillID, r.UserID) }
