// Package skills holds the skills one broker serves: each skill's Login with
// Amazon credentials, the client ids the partner issued to Alexa for it, and the
// Alexa region of its links.
//
// The skills come from a YAML file (BROKER_SKILLS_FILE, read by Load) or, without
// one, from the single-skill settings, which make one skill named Default.
// Which skill an API call means is tokens.Services.Resolve's rule, and which
// skill a hand-over is for, its Alexa client (reciprocal.Service).
//
// One concept per file: skill.go (the Skill), load.go (the file).
package skills

import (
	"regexp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Default is the id of the skill that the single-skill settings make, and the
// skill that a call naming no skill means when several skills are configured
// and one of them has this id. A broker that gains a skills file keeps the
// links of its skill with this id.
const Default = tokens.DefaultSkillID

// Skill is one Alexa skill the broker serves.
type Skill struct {
	// ID is the broker's name for the skill: 1 to 32 lowercase letters,
	// digits or '-'. Links belong to a skill and a user.
	ID string
	// LWAClientID and LWAClientSecret are the skill's Alexa Client Id and
	// Secret, with which the broker exchanges and refreshes its users' LWA
	// tokens.
	LWAClientID     string
	LWAClientSecret tokens.Secret
	// AlexaClientIDs are the client ids the partner issued to Alexa for this
	// skill: a hand-over whose client_id is one of them belongs to it. An
	// Alexa client id belongs to one skill only.
	AlexaClientIDs []string
	// Region is the Alexa API region new links of the skill remember: "NA",
	// "EU" or "FE", or "" for the host of the broker's Alexa API URL.
	Region string
}

// idPattern is the form of a skill id.
var idPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// validID reports whether id has the form of a skill id.
func validID(id string) bool { return idPattern.MatchString(id) }

// validRegion reports whether region is one a skill may have ("" included).
func validRegion(region string) bool {
	switch region {
	case "", "NA", "EU", "FE":
		return true
	}
	return false
}
