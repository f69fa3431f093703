// Package reports carries baby-activity profile reports from the companion
// backend to the Alexa Health profile API. Service checks a report as the API
// expects it and keeps it in the outbox (Store) before acknowledging it;
// Deliverer sends it in the background through a Sender, at least once, with
// backoff and retries until a deadline. A user's reports are sent one at a
// time and never an older one after a newer: each report is the user's whole
// set of profiles, so delivering the newest supersedes the older ones still
// pending.
//
// The doc comments of Store, Sender and Tokens are the specification of their
// adapters (the bbolt and DynamoDB stores, the Alexa client, the token
// service); storetest.RunReports holds every Store to it.
package reports

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// State is where a report stands.
type State int

// The states of a report.
const (
	// StatePending: accepted and stored, not delivered yet.
	StatePending State = iota + 1
	// StateDelivered: the Alexa Health API answered 2xx.
	StateDelivered
	// StateFailed: delivery stopped for good; LastError says why.
	StateFailed
	// StateSuperseded: a newer report of the same user was delivered first.
	StateSuperseded
)

// String returns the state's wire name.
func (s State) String() string {
	switch s {
	case StatePending:
		return "PENDING"
	case StateDelivered:
		return "DELIVERED"
	case StateFailed:
		return "FAILED"
	case StateSuperseded:
		return "SUPERSEDED"
	}
	return "UNKNOWN"
}

// states lists every State.
var states = []State{StatePending, StateDelivered, StateFailed, StateSuperseded}

// ParseState returns the state whose wire name is name, as String spells it, or
// an EINVALID error for any other name. Stores keep states by name, so that
// renumbering State cannot change stored reports.
func ParseState(name string) (State, error) {
	for _, s := range states {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, tokens.Errorf(tokens.EINVALID, "unknown report state %q", name)
}

// Final reports whether the state is an end state.
func (s State) Final() bool { return s == StateDelivered || s == StateFailed || s == StateSuperseded }

// Profile is one baby-activity profile, as the Alexa Health API names its
// fields.
type Profile struct {
	ProfileID    string       `json:"profileId"`
	Name         Name         `json:"name"`
	Capabilities []Capability `json:"capabilities"`
}

// Name is a profile's name and the nicknames Alexa recognizes.
type Name struct {
	FirstName string   `json:"firstName"`
	LastName  string   `json:"lastName,omitempty"`
	NickNames []string `json:"nickNames"`
}

// Capability is one Alexa.Health interface a profile supports.
type Capability struct {
	Name                string   `json:"name"`
	Type                string   `json:"type"`
	Version             string   `json:"version"`
	SupportedOperations []string `json:"supportedOperations"`
}

// Report is one submission: a user's whole set of profiles, and its delivery
// record.
type Report struct {
	// MessageID identifies the report; the caller's, or a new UUID.
	MessageID string
	// UserID is the partner's user whose link carries the report.
	UserID string
	// SkillID is the skill of that link; "" is the default skill (reports
	// stored before skills existed have none).
	SkillID string
	// Kind says what is delivered: a profile report (Profiles) or an Alexa
	// event (Message); "" is KindProfileReport (reports stored before kinds
	// existed have none). Stores keep both as given.
	Kind Kind
	// Message is the Alexa event of a KindAlexaEvent delivery, as accepted:
	// the JSON object {"event":…,"context":…} without any token.
	Message []byte
	// Profiles is the user's whole set of profiles.
	Profiles []Profile
	// Seq orders a lane's reports (see Lane): a later submission has a
	// higher Seq.
	Seq int64

	// State is where the report stands.
	State State
	// Attempts counts the attempts at sending the report.
	Attempts int
	// LastError says why the last attempt failed, or why the report failed.
	LastError string
	// SubmittedAt is when the report was accepted.
	SubmittedAt time.Time
	// NextAttemptAt is when the deliverer may try again; while an attempt is
	// under way, it holds the report until the attempt's claim runs out.
	NextAttemptAt time.Time
	// DeliveredAt is when the Alexa Health API accepted the report.
	DeliveredAt time.Time
	// FinishedAt is when the report reached an end state; it is removed a
	// retention period later.
	FinishedAt time.Time

	// Version is the store's compare-and-set counter: 0 for a report not stored yet.
	Version int64
}

// Interfaces lists the known Alexa.Health capability interfaces.
var Interfaces = []string{
	"Alexa.Health.DiaperChange",
	"Alexa.Health.InfantFeeding",
	"Alexa.Health.Sleep",
	"Alexa.Health.Weight",
	"Alexa.Health.BreastPumping",
}

// Operations lists the known operations of the Alexa.Health interfaces.
var Operations = []string{"Add", "Delete", "Get", "Start", "Stop", "Pause", "Resume", "Cancel", "Switch"}

// Limits on what one report may hold.
const (
	// MaxProfiles is the most profiles one report holds.
	MaxProfiles = 50
	// MaxMessageIDLen is the length in bytes of the longest message id.
	MaxMessageIDLen = 128
	// maxTextLen is the length in bytes of the longest profile id.
	maxTextLen = 256
	// MaxBodyBytes is the size in bytes of the largest request body the
	// broker sends to the Alexa API for one report: {"report":{"messageId",
	// "profiles"}} as JSON. The Alexa Health profile API documents no limit;
	// this is the one Amazon documents for the Alexa event gateway's largest
	// events ("Maximum payload size for AddOrUpdateReport event – 256
	// kilobytes", Alexa.Discovery interface limits,
	// developer.amazon.com/docs/device-apis/alexa-discovery.html), taken as
	// the bound of every Alexa API the broker posts to.
	MaxBodyBytes = 256 << 10
)

// blank reports whether s holds nothing but white space (or nothing): the
// Alexa API refuses such a name or id as it refuses an empty one.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

// alexaBody is the request body the Alexa Health profile API takes for r, in
// the form the Sender posts it; Validate measures it.
type alexaBody struct {
	Report struct {
		MessageID string    `json:"messageId"`
		Profiles  []Profile `json:"profiles"`
	} `json:"report"`
}

// bodySize returns the size in bytes of the request body that carries r to the
// Alexa API, as JSON.
func (r *Report) bodySize() (int, error) {
	var body alexaBody
	body.Report.MessageID, body.Report.Profiles = r.MessageID, r.Profiles
	b, err := json.Marshal(body)
	if err != nil {
		return 0, tokens.Errorf(tokens.EINVALID, "profiles: cannot be encoded as JSON: %v", err)
	}
	return len(b), nil
}

// Validate returns an EINVALID error naming the first field that the Alexa
// Health API would refuse, such as "profiles[0].name.nickNames": among them
// ids and names that are empty or only white space, and profiles whose body
// would be larger than MaxBodyBytes. An empty MessageID passes:
// Service.Submit gives such a report a new one (before it calls Validate, so
// that the body is measured with it).
func (r *Report) Validate() error {
	invalid := func(field, why string) error {
		return tokens.Errorf(tokens.EINVALID, "%s: %s", field, why)
	}
	switch {
	case r.UserID == "":
		return invalid("user_id", "required")
	case len(r.MessageID) > MaxMessageIDLen:
		return invalid("message_id", fmt.Sprintf("longer than %d characters", MaxMessageIDLen))
	case len(r.Profiles) == 0:
		return invalid("profiles", "at least one profile is required")
	case len(r.Profiles) > MaxProfiles:
		return invalid("profiles", fmt.Sprintf("at most %d profiles", MaxProfiles))
	}
	ids := map[string]bool{}
	for i, p := range r.Profiles {
		at := fmt.Sprintf("profiles[%d]", i)
		switch {
		case blank(p.ProfileID):
			return invalid(at+".profileId", "required (not only white space)")
		case len(p.ProfileID) > maxTextLen:
			return invalid(at+".profileId", "too long")
		case ids[p.ProfileID]:
			return invalid(at+".profileId", "repeated")
		case blank(p.Name.FirstName):
			return invalid(at+".name.firstName", "required (not only white space)")
		case len(p.Name.NickNames) == 0:
			return invalid(at+".name.nickNames", "at least one nickname is required")
		case len(p.Capabilities) == 0:
			return invalid(at+".capabilities", "at least one capability is required")
		}
		ids[p.ProfileID] = true
		for j, n := range p.Name.NickNames {
			if blank(n) {
				return invalid(fmt.Sprintf("%s.name.nickNames[%d]", at, j), "empty or only white space")
			}
		}
		names := map[string]bool{}
		for j, c := range p.Capabilities {
			cat := fmt.Sprintf("%s.capabilities[%d]", at, j)
			switch {
			case !slices.Contains(Interfaces, c.Name):
				return invalid(cat+".name", fmt.Sprintf("unknown interface %q", c.Name))
			case names[c.Name]:
				return invalid(cat+".name", "repeated")
			case c.Type != "AlexaInterface":
				return invalid(cat+".type", `must be "AlexaInterface"`)
			case blank(c.Version):
				return invalid(cat+".version", "required (not only white space)")
			case !slices.Contains(c.SupportedOperations, "Get"):
				return invalid(cat+".supportedOperations", `must include "Get"`)
			}
			names[c.Name] = true
			for k, op := range c.SupportedOperations {
				if !slices.Contains(Operations, op) {
					return invalid(fmt.Sprintf("%s.supportedOperations[%d]", cat, k), fmt.Sprintf("unknown operation %q", op))
				}
			}
		}
	}
	size, err := r.bodySize()
	if err != nil {
		return err
	}
	if size > MaxBodyBytes {
		return invalid("profiles", fmt.Sprintf("the report's body would be %d bytes, more than the %d bytes the Alexa API takes", size, MaxBodyBytes))
	}
	return nil
}
