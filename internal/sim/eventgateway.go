package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// AlexaEventsPath is the path of the Alexa Event Gateway, on the simulator as
// on api.amazonalexa.com.
const AlexaEventsPath = "/v3/events"

// Limits of the simulated Event Gateway, as Amazon documents them for its
// largest events (Alexa.Discovery interface limits).
const (
	// AlexaEventMaxBytes is the largest request body the gateway takes: 256
	// KB, the maximum payload size Amazon documents for AddOrUpdateReport.
	// A larger body is answered 413 REQUEST_ENTITY_TOO_LARGE_EXCEPTION.
	AlexaEventMaxBytes = 256 << 10
	// AlexaDiscoveryMaxEndpoints is the most endpoints one Alexa.Discovery
	// AddOrUpdateReport or DeleteReport may carry; more are answered 413
	// REQUEST_ENTITY_TOO_LARGE_EXCEPTION.
	AlexaDiscoveryMaxEndpoints = 300
)

// The codes of the Event Gateway's error answers, in payload.code.
const (
	// EventInvalidRequest (400): the message is malformed or misses a field.
	EventInvalidRequest = "INVALID_REQUEST_EXCEPTION"
	// EventInvalidAccessToken (401): the token is invalid, expired or malformed.
	EventInvalidAccessToken = "INVALID_ACCESS_TOKEN_EXCEPTION"
	// EventSkillDisabled (403): the user disabled the skill.
	EventSkillDisabled = "SKILL_DISABLED_EXCEPTION"
	// EventSkillNeverEnabled (403): the user never enabled the skill in this
	// region.
	EventSkillNeverEnabled = "SKILL_NEVER_ENABLED_EXCEPTION"
	// EventInsufficientPermission (403): the token does not grant sending
	// events.
	EventInsufficientPermission = "INSUFFICIENT_PERMISSION_EXCEPTION"
	// EventRequestTooLarge (413): the message is larger than the gateway takes.
	EventRequestTooLarge = "REQUEST_ENTITY_TOO_LARGE_EXCEPTION"
	// EventThrottling (429): too many requests; retry after Retry-After.
	EventThrottling = "THROTTLING_EXCEPTION"
	// EventInternalService (500): the gateway failed.
	EventInternalService = "INTERNAL_SERVICE_EXCEPTION"
	// EventServiceUnavailable (503): the gateway cannot take the message now.
	EventServiceUnavailable = "SERVICE_UNAVAILABLE_EXCEPTION"
)

// ReceivedEvent is one event the simulated Event Gateway accepted.
type ReceivedEvent struct {
	// Region is the region whose path the event was posted to ("NA", "EU" or
	// "FE"; see Alexa.RegionURL), or "" for the unprefixed path.
	Region string
	// Namespace, Name and MessageID are the event's event.header fields.
	Namespace, Name, MessageID string
	// EndpointID is event.endpoint.endpointId, or "" for an event without an
	// endpoint (Alexa.Discovery AddOrUpdateReport and DeleteReport).
	EndpointID string
	// Token is the access token of the event's scope (event.endpoint.scope, or
	// event.payload.scope for an event without an endpoint).
	Token string
	// BearerHeader reports whether the request also carried the token as
	// Authorization: Bearer.
	BearerHeader bool
	// Body is the request body exactly as received, scope included, for tests
	// that decode the event themselves.
	Body []byte
	// At is when the event was accepted, by the simulator's clock.
	At time.Time
}

// EventGateway simulates the Alexa Event Gateway (POST /v3/events) of an Alexa
// simulator, as Amazon documents it: the message is {"event":…,"context":…},
// event.header carries namespace, name, messageId and payloadVersion "3", and
// the user's LWA access token is in event.endpoint.scope, or in
// event.payload.scope for events without an endpoint (Alexa.Discovery
// AddOrUpdateReport and DeleteReport), as {"type":"BearerToken","token":…}.
// The token must be one the LWA simulator issued and still valid; an
// Authorization: Bearer header, when sent, must carry the same token.
//
// It answers 202 with no body to an accepted event and records it per user.
// Errors are {"header":{"namespace":"System","name":"Exception","messageId":…},
// "payload":{"code":…,"description":…}}: 400 INVALID_REQUEST_EXCEPTION for a
// malformed message (naming the field, never repeating a value), 401
// INVALID_ACCESS_TOKEN_EXCEPTION, 403 with the code given to ForbidUser, 413
// REQUEST_ENTITY_TOO_LARGE_EXCEPTION above AlexaEventMaxBytes or
// AlexaDiscoveryMaxEndpoints. A failure injected with FailNext is answered
// with the code Amazon gives its status: 400 INVALID_REQUEST_EXCEPTION, 401
// INVALID_ACCESS_TOKEN_EXCEPTION, 403 SKILL_DISABLED_EXCEPTION, 413
// REQUEST_ENTITY_TOO_LARGE_EXCEPTION, 429 THROTTLING_EXCEPTION, 503
// SERVICE_UNAVAILABLE_EXCEPTION, and INTERNAL_SERVICE_EXCEPTION for any other
// status, with Retry-After when asked. Its faults, records and counters are
// its own, apart from the Health API's. Its methods are safe for concurrent
// use.
type EventGateway struct {
	alexaAPI[ReceivedEvent]
}

// newEventGateway returns the Event Gateway of an Alexa simulator configured by
// opts, whose LWA and Now are set.
func newEventGateway(opts AlexaOptions) *EventGateway {
	return &EventGateway{alexaAPI: newAlexaAPI[ReceivedEvent](opts)}
}

// ForbidUser makes the gateway answer 403 with code to user's events, even
// with a valid access token, until RestoreUser: EventSkillDisabled (also for
// ""), EventSkillNeverEnabled or EventInsufficientPermission, or any other
// code a test wants to see. Access tokens themselves stay valid;
// LWA.RevokeUser revokes those.
func (g *EventGateway) ForbidUser(user, code string) {
	g.forbid(user, cmp.Or(code, EventSkillDisabled))
}

// Received returns the events accepted for user (the user LWA issued their
// token for), in arrival order; nil when there are none. The result is a copy
// the caller may keep.
func (g *EventGateway) Received(user string) []ReceivedEvent {
	return g.receivedBy(user, func(e ReceivedEvent) ReceivedEvent {
		e.Body = slices.Clone(e.Body)
		return e
	})
}

// serve answers one request to the gateway of region ("" for the unprefixed
// path).
func (g *EventGateway) serve(w http.ResponseWriter, r *http.Request, region string) {
	if !g.admit(w, r, writeFaultException) {
		return
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		g.refuse(w, http.StatusMethodNotAllowed, "The method must be POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		g.refuse(w, http.StatusBadRequest, "Content-Type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, AlexaEventMaxBytes))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			g.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The message is larger than %d bytes", AlexaEventMaxBytes))
			return
		}
		g.refuse(w, http.StatusBadRequest, "The body cannot be read")
		return
	}
	ev, msg := parseGatewayEvent(body)
	if msg != "" {
		g.refuse(w, http.StatusBadRequest, msg)
		return
	}
	bearer := false
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) != ev.token {
			g.refuse(w, http.StatusBadRequest, "The Authorization header must be Bearer with the scope's token")
			return
		}
		bearer = true
	}

	user, status, code := g.checkToken(ev.token)
	switch status {
	case http.StatusUnauthorized:
		writeException(w, status, EventInvalidAccessToken, invalidTokenDescription)
		return
	case http.StatusForbidden:
		writeException(w, status, code, forbiddenDescription(code))
		return
	}
	if ev.endpoints > AlexaDiscoveryMaxEndpoints {
		g.refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("event.payload.endpoints: more than %d endpoints", AlexaDiscoveryMaxEndpoints))
		return
	}

	g.accept(user, ReceivedEvent{
		Region:       region,
		Namespace:    ev.namespace,
		Name:         ev.name,
		MessageID:    ev.messageID,
		EndpointID:   ev.endpointID,
		Token:        ev.token,
		BearerHeader: bearer,
		Body:         body,
		At:           g.now(),
	})
	w.WriteHeader(http.StatusAccepted)
}

// refuse writes an answer refusing the request itself (400, 405 and 413) and
// counts it.
func (g *EventGateway) refuse(w http.ResponseWriter, status int, desc string) {
	g.count(func(s *AlexaStats) { s.Invalid++ })
	code := EventInvalidRequest
	if status == http.StatusRequestEntityTooLarge {
		code = EventRequestTooLarge
	}
	writeException(w, status, code, desc)
}

// invalidTokenDescription is the description of a 401 answer.
const invalidTokenDescription = "The access token is invalid, expired or malformed"

// writeFaultException writes the answer to a failure injected with status, with
// the code and description Amazon answers that status with.
func writeFaultException(w http.ResponseWriter, status int) {
	code, desc := EventInternalService, "The service encountered an internal error"
	switch status {
	case http.StatusBadRequest:
		code, desc = EventInvalidRequest, "The message is invalid"
	case http.StatusUnauthorized:
		code, desc = EventInvalidAccessToken, invalidTokenDescription
	case http.StatusForbidden:
		code, desc = EventSkillDisabled, forbiddenDescription(EventSkillDisabled)
	case http.StatusRequestEntityTooLarge:
		code, desc = EventRequestTooLarge, "The message is too large"
	case http.StatusTooManyRequests:
		code, desc = EventThrottling, "Too many requests"
	case http.StatusServiceUnavailable:
		code, desc = EventServiceUnavailable, "The service cannot take the message now"
	}
	writeException(w, status, code, desc)
}

// forbiddenDescription is the description of a 403 answer with code.
func forbiddenDescription(code string) string {
	switch code {
	case EventSkillDisabled:
		return "The skill is disabled for this user"
	case EventSkillNeverEnabled:
		return "The skill was never enabled for this user in this region"
	case EventInsufficientPermission:
		return "The token does not grant the permission to send events"
	}
	return "Forbidden"
}

// writeException writes the gateway's error answer, with a new messageId.
func writeException(w http.ResponseWriter, status int, code, desc string) {
	var ex struct {
		Header struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
			MessageID string `json:"messageId"`
		} `json:"header"`
		Payload struct {
			Code        string `json:"code"`
			Description string `json:"description"`
		} `json:"payload"`
	}
	ex.Header.Namespace, ex.Header.Name, ex.Header.MessageID = "System", "Exception", uuid.NewString()
	ex.Payload.Code, ex.Payload.Description = code, desc
	writeJSON(w, status, ex)
}

// gatewayEvent is what the gateway takes from an accepted message.
type gatewayEvent struct {
	namespace, name, messageID string
	endpointID                 string
	token                      string
	// endpoints counts payload.endpoints of an Alexa.Discovery report.
	endpoints int
}

// The message, as Amazon documents it; json.RawMessage where the shape is
// checked by hand.
type (
	gatewayMessage struct {
		Event   *gatewayEventBody `json:"event"`
		Context json.RawMessage   `json:"context"`
	}
	gatewayEventBody struct {
		Header   *gatewayHeader  `json:"header"`
		Endpoint json.RawMessage `json:"endpoint"`
		Payload  json.RawMessage `json:"payload"`
	}
	gatewayHeader struct {
		Namespace      string `json:"namespace"`
		Name           string `json:"name"`
		MessageID      string `json:"messageId"`
		PayloadVersion string `json:"payloadVersion"`
	}
	gatewayEndpoint struct {
		Scope      *gatewayScope `json:"scope"`
		EndpointID string        `json:"endpointId"`
	}
	// scopedPayload is the payload of an event without an endpoint.
	scopedPayload struct {
		Scope *gatewayScope `json:"scope"`
	}
	// discoveryPayload is the payload of AddOrUpdateReport and DeleteReport.
	discoveryPayload struct {
		Scope     *gatewayScope     `json:"scope"`
		Endpoints []json.RawMessage `json:"endpoints"`
	}
	gatewayScope struct {
		Type  string `json:"type"`
		Token string `json:"token"`
	}
)

// parseGatewayEvent decodes and checks a message. On refusal it returns a
// description that names the offending field, such as
// "event.header.payloadVersion must be \"3\""; it never repeats a value.
func parseGatewayEvent(body []byte) (gatewayEvent, string) {
	var m gatewayMessage
	if msg := decodeJSON(body, &m, ""); msg != "" {
		return gatewayEvent{}, msg
	}
	ev := m.Event
	switch {
	case ev == nil:
		return gatewayEvent{}, "event is required"
	case ev.Header == nil:
		return gatewayEvent{}, "event.header is required"
	case ev.Header.Namespace == "":
		return gatewayEvent{}, "event.header.namespace is required"
	case ev.Header.Name == "":
		return gatewayEvent{}, "event.header.name is required"
	case ev.Header.MessageID == "":
		return gatewayEvent{}, "event.header.messageId is required"
	case ev.Header.PayloadVersion != "3":
		return gatewayEvent{}, `event.header.payloadVersion must be "3"`
	case !isObject(ev.Payload):
		return gatewayEvent{}, "event.payload must be an object"
	case m.Context != nil && !isObject(m.Context):
		return gatewayEvent{}, "context must be an object"
	}
	out := gatewayEvent{namespace: ev.Header.Namespace, name: ev.Header.Name, messageID: ev.Header.MessageID}

	discovery := ev.Header.Namespace == "Alexa.Discovery" && (ev.Header.Name == "AddOrUpdateReport" || ev.Header.Name == "DeleteReport")
	var scope *gatewayScope
	where := "event.payload.scope"
	switch {
	case discovery:
		var payload discoveryPayload
		if msg := decodeJSON(ev.Payload, &payload, "event.payload."); msg != "" {
			return gatewayEvent{}, msg
		}
		if payload.Endpoints == nil {
			return gatewayEvent{}, "event.payload.endpoints is required"
		}
		out.endpoints = len(payload.Endpoints)
		scope = payload.Scope
	case ev.Endpoint != nil:
		if !isObject(ev.Endpoint) {
			return gatewayEvent{}, "event.endpoint must be an object"
		}
		var ep gatewayEndpoint
		if msg := decodeJSON(ev.Endpoint, &ep, "event.endpoint."); msg != "" {
			return gatewayEvent{}, msg
		}
		if ep.EndpointID == "" {
			return gatewayEvent{}, "event.endpoint.endpointId is required"
		}
		out.endpointID = ep.EndpointID
		scope, where = ep.Scope, "event.endpoint.scope"
	default:
		var payload scopedPayload
		if msg := decodeJSON(ev.Payload, &payload, "event.payload."); msg != "" {
			return gatewayEvent{}, msg
		}
		scope = payload.Scope
	}
	switch {
	case scope == nil:
		return gatewayEvent{}, where + " is required"
	case scope.Type != "BearerToken":
		return gatewayEvent{}, where + `.type must be "BearerToken"`
	case scope.Token == "":
		return gatewayEvent{}, where + ".token is required"
	}
	out.token = scope.Token
	return out, ""
}

// decodeJSON decodes one JSON value into v and returns "" or a description of
// the problem that names the field below prefix, without its value. Unknown
// fields are allowed: events carry many that the gateway passes on.
func decodeJSON(data []byte, v any, prefix string) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && typeErr.Field != "" {
			return prefix + typeErr.Field + " has the wrong JSON type"
		}
		if prefix == "" {
			return "The body is not a JSON object"
		}
		return strings.TrimSuffix(prefix, ".") + " is not valid JSON"
	}
	if _, err := dec.Token(); err != io.EOF {
		return "The body has data after the JSON object"
	}
	return ""
}

// isObject reports whether raw holds a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}
