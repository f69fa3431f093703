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

// allows reports whether clientID is one of skill's Alexa clients.
func allows(skill reciprocal.Skill, clientID string) bool {
	return clientID != "" && slices.Contains(skill.ClientIDs, clientID)
}
