// Package smarthome is a smart-home skill's hand-over of a user's Login with
// Amazon authorization code: Alexa's Alexa.Authorization AcceptGrant
// directive, which Alexa sends to the skill's own endpoint (usually a Lambda)
// and the skill forwards to the broker as it received it. The broker checks
// the directive, authenticates its grantee token exactly as the reciprocal
// hand-over authenticates its bearer (internal/reciprocal), has the code
// exchanged within reciprocal.Deadline, and answers with Alexa's own message,
// an AcceptGrant.Response or an ErrorResponse, which the skill returns to
// Alexa unchanged.
//
// Like internal/reciprocal, it answers in its caller's terms rather than the
// gateway's gRPC status JSON: every failure is an ErrorResponse of type
// ACCEPT_GRANT_FAILED, with the HTTP status of its own small error table
// (result in errors.go), which maps the same failures to the same statuses as
// the reciprocal endpoint's.
package smarthome

import (
	"cmp"
	"slices"

	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The names and values of the directive and of its answers, as Amazon
// documents them.
const (
	// Namespace is the namespace of the directive and of both answers.
	Namespace = "Alexa.Authorization"
	// NameAcceptGrant is the name of the directive.
	NameAcceptGrant = "AcceptGrant"
	// NameResponse is the name of the answer to a directive that was carried
	// out.
	NameResponse = "AcceptGrant.Response"
	// NameErrorResponse is the name of the answer to a directive that failed.
	NameErrorResponse = "ErrorResponse"
	// PayloadVersion is the payload version of the directive and of both
	// answers.
	PayloadVersion = "3"
	// GrantType is the type of the directive's grant: an LWA authorization
	// code.
	GrantType = "OAuth2.AuthorizationCode"
	// GranteeType is the type of the directive's grantee: the user's access
	// token from the partner's authorization server.
	GranteeType = "BearerToken"
	// ErrorType is the payload type of every ErrorResponse the broker answers.
	ErrorType = "ACCEPT_GRANT_FAILED"
)

// Request is the message Alexa sends the skill, and the skill forwards to the
// broker: {"directive":{…}}.
type Request struct {
	Directive Directive `json:"directive"`
}

// Directive is an Alexa.Authorization AcceptGrant directive.
type Directive struct {
	Header  Header  `json:"header"`
	Payload Payload `json:"payload"`
}

// Header is the header of a directive or of an event (an answer).
type Header struct {
	// Namespace is Namespace.
	Namespace string `json:"namespace"`
	// Name is NameAcceptGrant in the directive, NameResponse or
	// NameErrorResponse in an answer.
	Name string `json:"name"`
	// MessageID identifies the message; every answer has a new UUID.
	MessageID string `json:"messageId"`
	// CorrelationToken is left out: AcceptGrant has none. It is read and
	// written when present, for the messages of Alexa that carry one.
	CorrelationToken string `json:"correlationToken,omitempty"`
	// PayloadVersion is PayloadVersion.
	PayloadVersion string `json:"payloadVersion"`
}

// Payload is the payload of an AcceptGrant directive.
type Payload struct {
	Grant   Grant   `json:"grant"`
	Grantee Grantee `json:"grantee"`
}

// Grant is what the directive hands over: an LWA authorization code.
type Grant struct {
	// Type is GrantType.
	Type string `json:"type"`
	// Code is the LWA authorization code. It is never logged nor answered.
	Code tokens.Secret `json:"code"`
}

// Grantee is the user the grant is for, as the partner's authorization server
// knows them.
type Grantee struct {
	// Type is GranteeType.
	Type string `json:"type"`
	// Token is the user's access token from the partner's authorization
	// server: a JWT whose sub is the user. It is never logged nor answered.
	Token tokens.Secret `json:"token"`
}

// Validate returns an EINVALID error naming the first field of d that is not
// as an AcceptGrant directive has it: the header's namespace, name and
// payload version, the grant's type and code, the grantee's type. It does not
// look at the grantee's token: a missing token is not a malformed directive
// but a call without credentials.
func (d Directive) Validate() error {
	switch {
	case d.Header.Namespace != Namespace:
		return tokens.Errorf(tokens.EINVALID, "directive.header.namespace must be %s", Namespace)
	case d.Header.Name != NameAcceptGrant:
		return tokens.Errorf(tokens.EINVALID, "directive.header.name must be %s", NameAcceptGrant)
	case d.Header.PayloadVersion != PayloadVersion:
		return tokens.Errorf(tokens.EINVALID, "directive.header.payloadVersion must be %q", PayloadVersion)
	case d.Payload.Grant.Type != GrantType:
		return tokens.Errorf(tokens.EINVALID, "directive.payload.grant.type must be %s", GrantType)
	case d.Payload.Grant.Code == "":
		return tokens.Errorf(tokens.EINVALID, "directive.payload.grant.code is required")
	case d.Payload.Grantee.Type != GranteeType:
		return tokens.Errorf(tokens.EINVALID, "directive.payload.grantee.type must be %s", GranteeType)
	}
	return nil
}

// Response is the broker's answer, which the skill returns to Alexa as it is:
// {"event":{…}}.
type Response struct {
	Event Event `json:"event"`
}

// Event is an answer to the directive: an AcceptGrant.Response or an
// ErrorResponse.
type Event struct {
	Header  Header       `json:"header"`
	Payload EventPayload `json:"payload"`
}

// EventPayload is the payload of an answer: empty ({}) in an
// AcceptGrant.Response; the error's type and message in an ErrorResponse.
type EventPayload struct {
	// Type is ErrorType in an ErrorResponse.
	Type string `json:"type,omitempty"`
	// Message says why the directive failed. It never holds the code or the
	// grantee's token.
	Message string `json:"message,omitempty"`
}

// Skill is the smart-home skill a directive is for, as the caller resolved
// it.
type Skill struct {
	// ID is the broker's name for the skill, for the logs.
	ID string
	// AlexaClientIDs are the client ids the partner issued to Alexa for the
	// skill: the grantee token's client must be one of them.
	AlexaClientIDs []string
	// Region is the Alexa API region the skill's new links remember; "" for
	// the default host.
	Region string
	// Tokens exchanges the skill's codes with its LWA credentials and stores
	// the links; tokens.Service implements it.
	Tokens reciprocal.Exchanger
}

// allows reports whether clientID is one of the skill's Alexa clients.
func (s Skill) allows(clientID string) bool {
	return clientID != "" && slices.Contains(s.AlexaClientIDs, clientID)
}

// DefaultSkillID is the id of the skill a request without skill_id is for
// when more than one skill is known.
const DefaultSkillID = "default"

// StaticSkills returns a SkillResolver over skills: an id names the skill of
// that ID; no id names the only skill, or else the skill DefaultSkillID. It
// returns an EINVALID error naming skill_id for an id that names no skill,
// and for no id when neither rule finds one.
func StaticSkills(skills ...Skill) SkillResolver {
	skills = slices.Clone(skills)
	return func(id string) (Skill, error) {
		if id == "" && len(skills) == 1 {
			return skills[0], nil
		}
		want := cmp.Or(id, DefaultSkillID)
		if i := slices.IndexFunc(skills, func(s Skill) bool { return s.ID == want }); i >= 0 {
			return skills[i], nil
		}
		if id == "" {
			return Skill{}, tokens.Errorf(tokens.EINVALID, "skill_id is required: more than one skill is configured")
		}
		return Skill{}, tokens.Errorf(tokens.EINVALID, "skill_id %q names no skill", id)
	}
}
