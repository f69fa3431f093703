package tokens

// Trigger says what set off a refresh: the "trigger" of a link.refreshed
// event.
type Trigger string

// The triggers of a refresh.
const (
	// TriggerCaller: a caller needed a fresh token (Token, or Refresh by the
	// broker's own deliverer).
	TriggerCaller Trigger = "caller"
	// TriggerBackground: background refresh kept a link in use fresh ahead of
	// its use (RefreshInBackground).
	TriggerBackground Trigger = "background"
	// TriggerOperator: an operator forced one (RefreshByOperator).
	TriggerOperator Trigger = "operator"
)

// Reasons of link.relink_required and link.deleted events that the broker
// gives itself; callers of Delete may give others.
const (
	// ReasonInvalidGrant: LWA refused the link's refresh token.
	ReasonInvalidGrant = "invalid_grant"
	// ReasonAlexaForbidden: Alexa answered 403, the skill was disabled or its
	// permission withdrawn (RequireRelink).
	ReasonAlexaForbidden = "alexa_forbidden"
	// ReasonOperator is the reason of a deletion that gives none.
	ReasonOperator = "operator"
)

// Deletion says who deletes a link and why: the actor and reason of its
// link.deleted event.
type Deletion struct {
	// Actor is the calling token's client. Required.
	Actor string
	// Reason says why, such as "skill_disabled" or "user_request"; empty
	// means ReasonOperator.
	Reason string
}

// cause is who and what set off a refresh, for its link.refreshed event.
type cause struct {
	trigger Trigger
	actor   string
}

// The causes of refreshes the broker decides itself.
var (
	byCaller     = cause{TriggerCaller, ActorBroker}
	byBackground = cause{TriggerBackground, ActorBroker}
)
