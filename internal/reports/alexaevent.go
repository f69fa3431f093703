package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Limits on an Alexa event message, checked by CheckAlexaEvent.
const (
	// MaxAlexaEventBytes is the size in bytes of the largest Alexa event
	// message the broker takes: MaxBodyBytes, the 256 KB Amazon documents as
	// the largest AddOrUpdateReport the Alexa Event Gateway takes, less 4 KiB
	// kept for the scope that carries the user's access token, which the
	// broker adds when it sends the message.
	MaxAlexaEventBytes = MaxBodyBytes - 4<<10
	// MaxAlexaEndpointIDLen is the length in characters of the longest
	// event.endpoint.endpointId Amazon takes.
	MaxAlexaEndpointIDLen = 256
	// MaxAlexaDiscoveryEndpoints is the most endpoints one Alexa.Discovery
	// AddOrUpdateReport or DeleteReport carries: Amazon's limit of endpoints
	// per customer, above which the gateway answers 413.
	MaxAlexaDiscoveryEndpoints = 300
)

// CheckAlexaEvent checks an Alexa event message as the companion backend
// submits it: the JSON object {"event":…,"context":…} that the Alexa Event
// Gateway takes, as Amazon documents it, but without the scope that carries
// the user's access token, which the broker adds when it sends the message.
// It returns nil, or an EINVALID error whose message names the first field
// at fault, such as `event.header.payloadVersion: must be "3"`, and never
// repeats a value sent. It refuses:
//   - a message larger than MaxAlexaEventBytes, or that is not a JSON object,
//     or has a member other than "event" and the optional "context" (an object);
//   - an event without header, or whose header has no namespace, name or
//     messageId (strings, not only white space; messageId at most
//     MaxMessageIDLen bytes), or a payloadVersion other than "3";
//   - an event.payload that is not an object, and an event.endpoint (when
//     present) that is not an object or has no endpointId of at most
//     MaxAlexaEndpointIDLen characters;
//   - a scope in event.endpoint or event.payload: the broker adds the token;
//   - an Alexa.Discovery AddOrUpdateReport or DeleteReport with an endpoint
//     (Amazon takes their token from event.payload.scope), or without between
//     1 and MaxAlexaDiscoveryEndpoints event.payload.endpoints.
func CheckAlexaEvent(message []byte) error {
	invalid := func(field, why string) error {
		return tokens.Errorf(tokens.EINVALID, "%s: %s", field, why)
	}
	if len(message) > MaxAlexaEventBytes {
		return invalid("message", fmt.Sprintf("%d bytes, more than the %d bytes the broker takes (Amazon takes %d, the token included)", len(message), MaxAlexaEventBytes, MaxBodyBytes))
	}
	if !json.Valid(message) {
		return invalid("message", "not valid JSON")
	}
	if !utf8.Valid(message) {
		return invalid("message", "not valid UTF-8")
	}
	top, ok := jsonObject(message)
	if !ok {
		return invalid("message", "must be a JSON object")
	}
	for _, k := range sortedKeys(top) {
		if k != "event" && k != "context" {
			return invalid("message", fmt.Sprintf(`unknown member %q: a message holds "event" and the optional "context"`, k))
		}
	}
	if raw, ok := top["context"]; ok {
		if _, ok := jsonObject(raw); !ok {
			return invalid("context", "must be a JSON object")
		}
	}
	raw, ok := top["event"]
	if !ok {
		return invalid("event", "required")
	}
	event, ok := jsonObject(raw)
	if !ok {
		return invalid("event", "must be a JSON object")
	}

	raw, ok = event["header"]
	if !ok {
		return invalid("event.header", "required")
	}
	header, ok := jsonObject(raw)
	if !ok {
		return invalid("event.header", "must be a JSON object")
	}
	fields := map[string]string{}
	for _, name := range []string{"namespace", "name", "messageId"} {
		field := "event.header." + name
		raw, ok := header[name]
		if !ok {
			return invalid(field, "required")
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return invalid(field, "must be a string")
		}
		if strings.TrimSpace(s) == "" {
			return invalid(field, "required (not only white space)")
		}
		fields[name] = s
	}
	if len(fields["messageId"]) > MaxMessageIDLen {
		return invalid("event.header.messageId", fmt.Sprintf("longer than %d characters", MaxMessageIDLen))
	}
	var version string
	if raw, ok := header["payloadVersion"]; !ok {
		return invalid("event.header.payloadVersion", `required: must be "3"`)
	} else if json.Unmarshal(raw, &version) != nil || version != "3" {
		return invalid("event.header.payloadVersion", `must be "3"`)
	}
	var correlation string
	if raw, ok := header["correlationToken"]; ok && json.Unmarshal(raw, &correlation) != nil {
		return invalid("event.header.correlationToken", "must be a string")
	}

	raw, ok = event["payload"]
	if !ok {
		return invalid("event.payload", "required (an object, {} when empty)")
	}
	payload, ok := jsonObject(raw)
	if !ok {
		return invalid("event.payload", "must be a JSON object")
	}
	if _, ok := payload["scope"]; ok {
		return invalid("event.payload.scope", "must not be set: the broker adds the token")
	}
	raw, hasEndpoint := event["endpoint"]
	if hasEndpoint {
		endpoint, ok := jsonObject(raw)
		if !ok {
			return invalid("event.endpoint", "must be a JSON object")
		}
		if _, ok := endpoint["scope"]; ok {
			return invalid("event.endpoint.scope", "must not be set: the broker adds the token")
		}
		var id string
		switch raw, ok := endpoint["endpointId"]; {
		case !ok:
			return invalid("event.endpoint.endpointId", "required")
		case json.Unmarshal(raw, &id) != nil:
			return invalid("event.endpoint.endpointId", "must be a string")
		case strings.TrimSpace(id) == "":
			return invalid("event.endpoint.endpointId", "required (not only white space)")
		case utf8.RuneCountInString(id) > MaxAlexaEndpointIDLen:
			return invalid("event.endpoint.endpointId", fmt.Sprintf("longer than %d characters", MaxAlexaEndpointIDLen))
		}
	}

	if fields["namespace"] == "Alexa.Discovery" && (fields["name"] == "AddOrUpdateReport" || fields["name"] == "DeleteReport") {
		report := "Alexa.Discovery " + fields["name"]
		if hasEndpoint {
			return invalid("event.endpoint", "must not be set for "+report+": Amazon takes its token from event.payload.scope")
		}
		raw, ok := payload["endpoints"]
		if !ok {
			return invalid("event.payload.endpoints", "required for "+report)
		}
		var endpoints []json.RawMessage
		if json.Unmarshal(raw, &endpoints) != nil || endpoints == nil {
			return invalid("event.payload.endpoints", "must be an array")
		}
		switch {
		case len(endpoints) == 0:
			return invalid("event.payload.endpoints", "at least one endpoint is required")
		case len(endpoints) > MaxAlexaDiscoveryEndpoints:
			return invalid("event.payload.endpoints", fmt.Sprintf("at most %d endpoints", MaxAlexaDiscoveryEndpoints))
		}
	}
	return nil
}

// AlexaEventMessageID returns event.header.messageId of a message that
// CheckAlexaEvent accepts, and "" when there is none.
func AlexaEventMessageID(message []byte) string {
	var m struct {
		Event struct {
			Header struct {
				MessageID string `json:"messageId"`
			} `json:"header"`
		} `json:"event"`
	}
	if json.Unmarshal(message, &m) != nil {
		return ""
	}
	return m.Event.Header.MessageID
}

// jsonObject decodes raw as a JSON object into its members; ok is false when
// raw holds another JSON value (null included).
func jsonObject(raw []byte) (members map[string]json.RawMessage, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	if json.Unmarshal(raw, &members) != nil {
		return nil, false
	}
	return members, true
}

// sortedKeys returns m's keys in order, so that the first field at fault is
// always the same one.
func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
