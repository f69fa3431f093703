package reports_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// changeReport is an Alexa.ChangeReport as the companion backend submits it:
// Amazon's documented message, without the scope the broker adds.
const changeReport = `{
  "event": {
    "header": {"namespace": "Alexa", "name": "ChangeReport", "messageId": "3b4e9c1a-6f2d-4a8e-b7c1-9d0e5f2a1c33", "payloadVersion": "3"},
    "endpoint": {"endpointId": "thermostat-livingroom"},
    "payload": {
      "change": {
        "cause": {"type": "PHYSICAL_INTERACTION"},
        "properties": [{"namespace": "Alexa.ThermostatController", "name": "targetSetpoint",
          "value": {"value": 21.5, "scale": "CELSIUS"}, "timeOfSample": "2026-12-01T10:00:00.00Z", "uncertaintyInMilliseconds": 500}]
      }
    }
  },
  "context": {
    "properties": [{"namespace": "Alexa.EndpointHealth", "name": "connectivity", "value": {"value": "OK"},
      "timeOfSample": "2026-12-01T10:00:00.00Z", "uncertaintyInMilliseconds": 0}]
  }
}`

// addOrUpdateReport is an Alexa.Discovery AddOrUpdateReport without its scope.
const addOrUpdateReport = `{
  "event": {
    "header": {"namespace": "Alexa.Discovery", "name": "AddOrUpdateReport", "messageId": "a7f0c9e2-1b3d-4c5e-8f6a-7b8c9d0e1f2a", "payloadVersion": "3"},
    "payload": {
      "endpoints": [{"endpointId": "light-1", "manufacturerName": "Sample", "description": "a light", "friendlyName": "Hall light",
        "displayCategories": ["LIGHT"], "capabilities": [{"type": "AlexaInterface", "interface": "Alexa", "version": "3"}]}]
    }
  }
}`

// mutate decodes message, lets change edit it, and encodes it again.
func mutate(tb testing.TB, message string, change func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(message), &m); err != nil {
		tb.Fatal(err)
	}
	change(m)
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// obj returns the object at path below m ("event.header").
func obj(m map[string]any, path string) map[string]any {
	for _, k := range strings.Split(path, ".") {
		m = m[k].(map[string]any)
	}
	return m
}

func TestCheckAlexaEvent(t *testing.T) {
	huge := strings.Repeat("x", reports.MaxAlexaEventBytes)
	endpoints := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"endpointId": fmt.Sprintf("e-%d", i)}
		}
		return out
	}
	tests := []struct {
		name    string
		message string                 // the base message; changeReport when empty
		raw     string                 // the whole message instead, when set
		change  func(m map[string]any) // edits the base message
		// field is the field the error names first; "" means accepted.
		field string
		// why is a part of the error's reason.
		why string
	}{
		{name: "ChangeReport"},
		{name: "AddOrUpdateReport", message: addOrUpdateReport},
		{name: "DeleteReport", message: addOrUpdateReport, change: func(m map[string]any) {
			obj(m, "event.header")["name"] = "DeleteReport"
			obj(m, "event.payload")["endpoints"] = []any{map[string]any{"endpointId": "light-1"}}
		}},
		{name: "NoContext", change: func(m map[string]any) { delete(m, "context") }},
		{name: "EmptyPayload", change: func(m map[string]any) { obj(m, "event")["payload"] = map[string]any{} }},
		{name: "CorrelationToken", change: func(m map[string]any) { obj(m, "event.header")["correlationToken"] = "abc" }},
		{name: "EventWithoutEndpoint", change: func(m map[string]any) { delete(obj(m, "event"), "endpoint") }},
		{name: "MessageIDAtLimit", change: func(m map[string]any) {
			obj(m, "event.header")["messageId"] = strings.Repeat("m", reports.MaxMessageIDLen)
		}},
		{name: "EndpointIDAtLimit", change: func(m map[string]any) {
			obj(m, "event.endpoint")["endpointId"] = strings.Repeat("é", reports.MaxAlexaEndpointIDLen)
		}},
		{name: "DiscoveryEndpointsAtLimit", message: addOrUpdateReport, change: func(m map[string]any) {
			obj(m, "event.payload")["endpoints"] = endpoints(reports.MaxAlexaDiscoveryEndpoints)
		}},

		{name: "NotJSON", raw: `{"event":`, field: "message", why: "not valid JSON"},
		{name: "NotUTF8", raw: "{\"event\":\"\xff\"}", field: "message", why: "UTF-8"},
		{name: "Array", raw: `[]`, field: "message", why: "must be a JSON object"},
		{name: "Null", raw: `null`, field: "message", why: "must be a JSON object"},
		{name: "TooLarge", raw: `{"event":"` + huge + `"}`, field: "message", why: fmt.Sprintf("more than the %d bytes", reports.MaxAlexaEventBytes)},
		{name: "UnknownMember", change: func(m map[string]any) { m["user_id"] = "u" }, field: "message", why: `unknown member "user_id"`},
		{name: "ContextNotObject", change: func(m map[string]any) { m["context"] = []any{} }, field: "context", why: "must be a JSON object"},
		{name: "ContextNull", change: func(m map[string]any) { m["context"] = nil }, field: "context", why: "must be a JSON object"},
		{name: "NoEvent", change: func(m map[string]any) { delete(m, "event") }, field: "event", why: "required"},
		{name: "EventNotObject", change: func(m map[string]any) { m["event"] = "x" }, field: "event", why: "must be a JSON object"},
		{name: "NoHeader", change: func(m map[string]any) { delete(obj(m, "event"), "header") }, field: "event.header", why: "required"},
		{name: "HeaderNotObject", change: func(m map[string]any) { obj(m, "event")["header"] = 3 }, field: "event.header", why: "must be a JSON object"},
		{name: "NoNamespace", change: func(m map[string]any) { delete(obj(m, "event.header"), "namespace") }, field: "event.header.namespace", why: "required"},
		{name: "BlankName", change: func(m map[string]any) { obj(m, "event.header")["name"] = " " }, field: "event.header.name", why: "required"},
		{name: "NameNotString", change: func(m map[string]any) { obj(m, "event.header")["name"] = 7 }, field: "event.header.name", why: "must be a string"},
		{name: "NoMessageID", change: func(m map[string]any) { delete(obj(m, "event.header"), "messageId") }, field: "event.header.messageId", why: "required"},
		{name: "EmptyMessageID", change: func(m map[string]any) { obj(m, "event.header")["messageId"] = "" }, field: "event.header.messageId", why: "required"},
		{name: "LongMessageID", change: func(m map[string]any) {
			obj(m, "event.header")["messageId"] = strings.Repeat("m", reports.MaxMessageIDLen+1)
		}, field: "event.header.messageId", why: "longer than 128"},
		{name: "NoPayloadVersion", change: func(m map[string]any) { delete(obj(m, "event.header"), "payloadVersion") }, field: "event.header.payloadVersion", why: `must be "3"`},
		{name: "PayloadVersion2", change: func(m map[string]any) { obj(m, "event.header")["payloadVersion"] = "2" }, field: "event.header.payloadVersion", why: `must be "3"`},
		{name: "PayloadVersionNumber", change: func(m map[string]any) { obj(m, "event.header")["payloadVersion"] = 3 }, field: "event.header.payloadVersion", why: `must be "3"`},
		{name: "CorrelationTokenNotString", change: func(m map[string]any) { obj(m, "event.header")["correlationToken"] = 1 }, field: "event.header.correlationToken", why: "must be a string"},
		{name: "NoPayload", change: func(m map[string]any) { delete(obj(m, "event"), "payload") }, field: "event.payload", why: "required"},
		{name: "PayloadNull", change: func(m map[string]any) { obj(m, "event")["payload"] = nil }, field: "event.payload", why: "must be a JSON object"},
		{name: "PayloadArray", change: func(m map[string]any) { obj(m, "event")["payload"] = []any{} }, field: "event.payload", why: "must be a JSON object"},
		{name: "EndpointScope", change: func(m map[string]any) {
			obj(m, "event.endpoint")["scope"] = map[string]any{"type": "BearerToken", "token": "Atza|x"}
		}, field: "event.endpoint.scope", why: "must not be set: the broker adds the token"},
		{name: "PayloadScope", message: addOrUpdateReport, change: func(m map[string]any) {
			obj(m, "event.payload")["scope"] = map[string]any{"type": "BearerToken", "token": "Atza|x"}
		}, field: "event.payload.scope", why: "must not be set: the broker adds the token"},
		{name: "PayloadScopeBesideEndpoint", change: func(m map[string]any) { obj(m, "event.payload")["scope"] = nil }, field: "event.payload.scope", why: "must not be set"},
		{name: "EndpointNotObject", change: func(m map[string]any) { obj(m, "event")["endpoint"] = "thermostat" }, field: "event.endpoint", why: "must be a JSON object"},
		{name: "NoEndpointID", change: func(m map[string]any) { delete(obj(m, "event.endpoint"), "endpointId") }, field: "event.endpoint.endpointId", why: "required"},
		{name: "EndpointIDNotString", change: func(m map[string]any) { obj(m, "event.endpoint")["endpointId"] = 1 }, field: "event.endpoint.endpointId", why: "must be a string"},
		{name: "LongEndpointID", change: func(m map[string]any) {
			obj(m, "event.endpoint")["endpointId"] = strings.Repeat("e", reports.MaxAlexaEndpointIDLen+1)
		}, field: "event.endpoint.endpointId", why: "longer than 256"},
		{name: "DiscoveryWithEndpoint", message: addOrUpdateReport, change: func(m map[string]any) {
			obj(m, "event")["endpoint"] = map[string]any{"endpointId": "light-1"}
		}, field: "event.endpoint", why: "event.payload.scope"},
		{name: "DiscoveryNoEndpoints", message: addOrUpdateReport, change: func(m map[string]any) {
			delete(obj(m, "event.payload"), "endpoints")
		}, field: "event.payload.endpoints", why: "required"},
		{name: "DiscoveryEndpointsNotArray", message: addOrUpdateReport, change: func(m map[string]any) {
			obj(m, "event.payload")["endpoints"] = map[string]any{}
		}, field: "event.payload.endpoints", why: "must be an array"},
		{name: "DiscoveryNoEndpointInArray", message: addOrUpdateReport, change: func(m map[string]any) {
			obj(m, "event.payload")["endpoints"] = []any{}
		}, field: "event.payload.endpoints", why: "at least one"},
		{name: "DiscoveryTooManyEndpoints", message: addOrUpdateReport, change: func(m map[string]any) {
			obj(m, "event.payload")["endpoints"] = endpoints(reports.MaxAlexaDiscoveryEndpoints + 1)
		}, field: "event.payload.endpoints", why: "at most 300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			message := []byte(tt.raw)
			if tt.raw == "" {
				base := tt.message
				if base == "" {
					base = changeReport
				}
				message = mutate(t, base, func(m map[string]any) {
					if tt.change != nil {
						tt.change(m)
					}
				})
			}
			err := reports.CheckAlexaEvent(message)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("CheckAlexaEvent: %v", err)
				}
				return
			}
			if got := tokens.ErrorCode(err); got != tokens.EINVALID {
				t.Fatalf("CheckAlexaEvent = %v (code %q), want an EINVALID error", err, got)
			}
			msg := tokens.ErrorMessage(err)
			if !strings.HasPrefix(msg, tt.field+": ") {
				t.Errorf("message = %q, want it to name %s first", msg, tt.field)
			}
			if !strings.Contains(msg, tt.why) {
				t.Errorf("message = %q, want it to say %q", msg, tt.why)
			}
			if strings.Contains(msg, "Atza|") {
				t.Errorf("message = %q repeats the token sent", msg)
			}
		})
	}
}

func TestAlexaEventMessageID(t *testing.T) {
	tests := []struct{ message, want string }{
		{message: changeReport, want: "3b4e9c1a-6f2d-4a8e-b7c1-9d0e5f2a1c33"},
		{message: addOrUpdateReport, want: "a7f0c9e2-1b3d-4c5e-8f6a-7b8c9d0e1f2a"},
		{message: `{"event":{}}`, want: ""},
		{message: `not json`, want: ""},
	}
	for _, tt := range tests {
		if got := reports.AlexaEventMessageID([]byte(tt.message)); got != tt.want {
			t.Errorf("AlexaEventMessageID(%.30q) = %q, want %q", tt.message, got, tt.want)
		}
	}
}
