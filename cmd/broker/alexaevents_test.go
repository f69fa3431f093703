package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// changeReport is the JSON of a thermostat's Alexa.ChangeReport event with
// messageID, as the companion backend submits it: without a scope.
func changeReport(messageID, endpointID string) string {
	return `{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"` + messageID + `","payloadVersion":"3"},
	"endpoint":{"endpointId":"` + endpointID + `"},
	"payload":{"change":{"cause":{"type":"PHYSICAL_INTERACTION"},"properties":[{"namespace":"Alexa.ThermostatController",
	"name":"targetSetpoint","value":{"value":21.5,"scale":"CELSIUS"},"timeOfSample":"2026-12-01T10:00:00.00Z","uncertaintyInMilliseconds":500}]}}}`
}

// changeContext is the context submitted beside changeReport.
const changeContext = `{"properties":[{"namespace":"Alexa.EndpointHealth","name":"connectivity","value":{"value":"OK"},
	"timeOfSample":"2026-12-01T10:00:00.00Z","uncertaintyInMilliseconds":0}]}`

// addOrUpdateReport is the JSON of an Alexa.Discovery AddOrUpdateReport event
// with messageID: an event without an endpoint.
func addOrUpdateReport(messageID string) string {
	return `{"header":{"namespace":"Alexa.Discovery","name":"AddOrUpdateReport","messageId":"` + messageID + `","payloadVersion":"3"},
	"payload":{"endpoints":[{"endpointId":"lamp-1","manufacturerName":"Partner","friendlyName":"Lamp","description":"A lamp",
	"displayCategories":["LIGHT"],"capabilities":[{"type":"AlexaInterface","interface":"Alexa","version":"3"}]}]}}`
}

// alexaEventBody is the body of POST /v1/alexa-events for user's event in
// skillID ("" leaves skill_id out), with context when it is not "".
func alexaEventBody(user, skillID, event, context string) string {
	b := `{"user_id":"` + user + `"`
	if skillID != "" {
		b += `,"skill_id":"` + skillID + `"`
	}
	b += `,"event":` + event
	if context != "" {
		b += `,"context":` + context
	}
	return b + `}`
}

// alexaEventView is GET /v1/alexa-events/{message_id}.
type alexaEventView struct {
	MessageID   string  `json:"message_id"`
	UserID      string  `json:"user_id"`
	SkillID     string  `json:"skill_id"`
	State       string  `json:"state"`
	Attempts    int     `json:"attempts"`
	LastError   string  `json:"last_error"`
	DeliveredAt *string `json:"delivered_at"`
}

// submitAlexaEvent posts body to /v1/alexa-events with token and fails the
// test unless the answer is 202 with the message id and state PENDING.
func (h *harness) submitAlexaEvent(token, messageID, body string) {
	h.tb.Helper()
	status, resp := h.call("POST", "/v1/alexa-events", token, body)
	var got map[string]string
	_ = json.Unmarshal([]byte(resp), &got)
	if status != http.StatusAccepted || got["message_id"] != messageID || got["state"] != "PENDING" || len(got) != 2 {
		h.tb.Fatalf("submit Alexa event %s: %d %s, want 202 {message_id, state PENDING}", messageID, status, resp)
	}
}

// alexaEvent reads where an Alexa event stands.
func (h *harness) alexaEvent(token, messageID string) alexaEventView {
	h.tb.Helper()
	status, body := h.call("GET", "/v1/alexa-events/"+messageID, token, "")
	var v alexaEventView
	if err := json.Unmarshal([]byte(body), &v); status != http.StatusOK || err != nil {
		h.tb.Fatalf("GET Alexa event %s: %d %s (%v)", messageID, status, body, err)
	}
	return v
}

// waitAlexaEvent polls an Alexa event until cond holds, within 10 s, and
// returns it.
func (h *harness) waitAlexaEvent(token, messageID, what string, cond func(alexaEventView) bool) alexaEventView {
	h.tb.Helper()
	var v alexaEventView
	waitFor(h.tb, 10*time.Second, fmt.Sprintf("Alexa event %s %s", messageID, what), func() bool {
		v = h.alexaEvent(token, messageID)
		return cond(v)
	})
	return v
}

// waitAlexaEventState polls an Alexa event until it is in state.
func (h *harness) waitAlexaEventState(token, messageID, state string) alexaEventView {
	h.tb.Helper()
	return h.waitAlexaEvent(token, messageID, state, func(v alexaEventView) bool { return v.State == state })
}

// received returns the message ids the Event Gateway accepted for user, in
// arrival order.
func (h *harness) received(user string) []string {
	var ids []string
	for _, e := range h.sims.Alexa.Events().Received(user) {
		ids = append(ids, e.MessageID)
	}
	return ids
}

// lastReceived returns the last event the Event Gateway accepted for user,
// failing the test unless it has messageID.
func (h *harness) lastReceived(user, messageID string) sim.ReceivedEvent {
	h.tb.Helper()
	got := h.sims.Alexa.Events().Received(user)
	if len(got) == 0 || got[len(got)-1].MessageID != messageID {
		h.tb.Fatalf("the Event Gateway received %v for %s, want %s last", h.received(user), user, messageID)
	}
	return got[len(got)-1]
}

// decoded is v as generic JSON.
func decoded(tb testing.TB, v string) any {
	tb.Helper()
	var out any
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		tb.Fatalf("%v: %s", err, v)
	}
	return out
}

// TestAlexaEvents runs Alexa events of the smart-home skill through the
// broker to the Event Gateway simulator: the user's token put in the scope,
// the message otherwise as submitted; idempotent submission; every class of
// the gateway's answers; a user's events in order; and the metrics.
func TestAlexaEvents(t *testing.T) {
	h := newHarnessWith(t, sim.SetOptions{Skills: twoSkills}, map[string]string{"BROKER_BACKGROUND_REFRESH": "0s"})
	events := h.sims.Auth.ClientToken("skill-backend", []string{"broker:events"}, time.Hour)
	gateway := h.sims.Alexa.Events()
	h.linkSkill("owner", "home")
	h.linkSkill("neighbour", "home")

	t.Run("ChangeReport", func(t *testing.T) {
		h := h.in(t)
		h.submitAlexaEvent(events, "change-1", alexaEventBody("owner", "home", changeReport("change-1", "thermostat"), changeContext))
		v := h.waitAlexaEventState(events, "change-1", "DELIVERED")
		if v.UserID != "owner" || v.SkillID != "home" || v.Attempts != 1 || v.DeliveredAt == nil || v.LastError != "" {
			t.Errorf("GET the event: %+v", v)
		}
		got := h.lastReceived("owner", "change-1")
		if got.EndpointID != "thermostat" || got.Namespace != "Alexa" || got.Name != "ChangeReport" {
			t.Errorf("the gateway received %+v", got)
		}
		if !h.sims.LWA.ValidAccessToken(got.Token) || got.Token != h.partnerToken("owner", "home") {
			t.Error("the event's scope does not hold the user's valid home token")
		}
		var sent struct {
			Event struct {
				Header   map[string]any `json:"header"`
				Endpoint map[string]any `json:"endpoint"`
				Payload  any            `json:"payload"`
			} `json:"event"`
			Context any `json:"context"`
		}
		if err := json.Unmarshal(got.Body, &sent); err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"type": "BearerToken", "token": got.Token}; !cmp.Equal(sent.Event.Endpoint["scope"], want) {
			t.Errorf("event.endpoint.scope = %v, want the BearerToken", sent.Event.Endpoint["scope"])
		}
		var submitted struct {
			Payload any `json:"payload"`
		}
		_ = json.Unmarshal([]byte(changeReport("change-1", "thermostat")), &submitted)
		if diff := cmp.Diff(submitted.Payload, sent.Event.Payload); diff != "" {
			t.Errorf("event.payload changed on the way (-submitted +sent):\n%s", diff)
		}
		if diff := cmp.Diff(decoded(t, changeContext), sent.Context); diff != "" {
			t.Errorf("context changed on the way (-submitted +sent):\n%s", diff)
		}
	})

	t.Run("AddOrUpdateReport", func(t *testing.T) {
		h := h.in(t)
		h.submitAlexaEvent(events, "discovery-1", alexaEventBody("owner", "home", addOrUpdateReport("discovery-1"), ""))
		h.waitAlexaEventState(events, "discovery-1", "DELIVERED")
		got := h.lastReceived("owner", "discovery-1")
		var sent struct {
			Event struct {
				Endpoint any            `json:"endpoint"`
				Payload  map[string]any `json:"payload"`
			} `json:"event"`
			Context any `json:"context"`
		}
		if err := json.Unmarshal(got.Body, &sent); err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"type": "BearerToken", "token": got.Token}; !cmp.Equal(sent.Event.Payload["scope"], want) || !h.sims.LWA.ValidAccessToken(got.Token) {
			t.Errorf("event.payload.scope = %v, want the user's valid token", sent.Event.Payload["scope"])
		}
		if sent.Event.Endpoint != nil || sent.Context != nil {
			t.Errorf("sent an endpoint %v or a context %v the event did not have", sent.Event.Endpoint, sent.Context)
		}
	})

	t.Run("SameMessageID", func(t *testing.T) {
		h := h.in(t)
		before := len(gateway.Received("owner"))
		status, body := h.call("POST", "/v1/alexa-events", events, alexaEventBody("owner", "home", changeReport("change-1", "thermostat"), changeContext))
		var got map[string]string
		_ = json.Unmarshal([]byte(body), &got)
		if status != http.StatusAccepted || got["message_id"] != "change-1" || got["state"] != "DELIVERED" {
			t.Errorf("the same messageId again: %d %s, want 202 with the stored state DELIVERED", status, body)
		}
		if status, body := h.call("POST", "/v1/alexa-events", events, alexaEventBody("neighbour", "home", changeReport("change-1", "thermostat"), "")); status != http.StatusBadRequest || !strings.Contains(body, "event.header.messageId") {
			t.Errorf("the messageId of another user's event: %d %s, want 400 naming event.header.messageId", status, body)
		}
		// The deliverer polls every 20 ms: give it time to send it again.
		waitFor(t, 200*time.Millisecond, "", func() bool { return len(gateway.Received("owner")) > before })
		if n := len(gateway.Received("owner")) - before; n != 0 {
			t.Errorf("the gateway received %d more events, want none", n)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		h := h.in(t)
		withScope := strings.Replace(changeReport("scoped", "thermostat"), `"endpointId"`, `"scope":{"type":"BearerToken","token":"Atza|x"},"endpointId"`, 1)
		for _, c := range []struct{ name, body, field string }{
			{"EndpointScope", alexaEventBody("owner", "home", withScope, ""), "event.endpoint.scope"},
			{"PayloadScope", alexaEventBody("owner", "home", strings.Replace(addOrUpdateReport("scoped-2"), `"endpoints"`, `"scope":{"type":"BearerToken","token":"Atza|x"},"endpoints"`, 1), ""), "event.payload.scope"},
			{"PayloadVersion", alexaEventBody("owner", "home", strings.Replace(changeReport("v2", "thermostat"), `"payloadVersion":"3"`, `"payloadVersion":"2"`, 1), ""), "event.header.payloadVersion"},
			{"NoMessageID", alexaEventBody("owner", "home", changeReport("", "thermostat"), ""), "event.header.messageId"},
			{"NoEvent", `{"user_id":"owner","skill_id":"home"}`, "event"},
			{"NoUser", alexaEventBody("", "home", changeReport("no-user", "thermostat"), ""), "user_id"},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := h.in(t)
				if status, body := h.call("POST", "/v1/alexa-events", events, c.body); status != http.StatusBadRequest || !strings.Contains(body, c.field) {
					t.Errorf("%d %s, want 400 naming %s", status, body, c.field)
				}
			})
		}
		if status, body := h.call("POST", "/v1/alexa-events", events, alexaEventBody("stranger", "home", changeReport("stranger-1", "thermostat"), "")); status != http.StatusNotFound {
			t.Errorf("an event of a user not linked: %d %s, want 404", status, body)
		}
		if status, body := h.call("POST", "/v1/alexa-events", h.clientToken("broker:tokens"), alexaEventBody("owner", "home", changeReport("scope-1", "thermostat"), "")); status != http.StatusForbidden {
			t.Errorf("without broker:events: %d %s, want 403", status, body)
		}
		if status, body := h.call("GET", "/v1/alexa-events/nope", events, ""); status != http.StatusNotFound {
			t.Errorf("GET an unknown event: %d %s, want 404", status, body)
		}
	})

	t.Run("TokenRejectedOnce", func(t *testing.T) {
		h := h.in(t)
		old := h.partnerToken("owner", "home")
		refreshes, unauthorized := h.sims.LWA.Stats().RefreshesOK, gateway.Stats().Unauthorized
		gateway.RejectTokenNext(1)
		h.submitAlexaEvent(events, "rejected-1", alexaEventBody("owner", "home", changeReport("rejected-1", "thermostat"), ""))
		h.waitAlexaEventState(events, "rejected-1", "DELIVERED")
		if got := h.sims.LWA.Stats().RefreshesOK - refreshes; got != 1 {
			t.Errorf("LWA refreshes = %d after a 401, want 1", got)
		}
		if got := gateway.Stats().Unauthorized - unauthorized; got != 1 {
			t.Errorf("the gateway answered %d 401s, want 1", got)
		}
		if got := h.lastReceived("owner", "rejected-1"); got.Token == old || !h.sims.LWA.ValidAccessToken(got.Token) {
			t.Error("the event was resent with the rejected token, not a fresh one")
		}
	})

	t.Run("RefusedForGood", func(t *testing.T) {
		h := h.in(t)
		for status, code := range map[int]string{http.StatusBadRequest: sim.EventInvalidRequest, http.StatusRequestEntityTooLarge: sim.EventRequestTooLarge} {
			id := fmt.Sprintf("refused-%d", status)
			gateway.FailNext(1, status, 0)
			h.submitAlexaEvent(events, id, alexaEventBody("owner", "home", changeReport(id, "thermostat"), ""))
			v := h.waitAlexaEventState(events, id, "FAILED")
			if v.Attempts != 1 || !strings.Contains(v.LastError, code) {
				t.Errorf("after a %d: %+v, want FAILED after one attempt with Amazon's code %s", status, v, code)
			}
		}
		if _, l, _ := h.getLink("owner", "home"); l.State != "LINKED" {
			t.Errorf("a refused event changed the link: %+v", l)
		}
	})

	t.Run("ThrottledWithRetryAfter", func(t *testing.T) {
		h := h.in(t)
		gateway.ThrottleNext(1, 30*time.Second)
		h.submitAlexaEvent(events, "throttled-1", alexaEventBody("owner", "home", changeReport("throttled-1", "thermostat"), ""))
		v := h.waitAlexaEvent(events, "throttled-1", "tried once", func(v alexaEventView) bool { return v.Attempts == 1 })
		if v.State != "PENDING" || !strings.Contains(v.LastError, "429") {
			t.Fatalf("after a 429: %+v, want PENDING with the reason", v)
		}
		h.clock.Advance(20 * time.Second) // not yet: Retry-After is 30 s
		waitFor(t, 200*time.Millisecond, "", func() bool { return h.alexaEvent(events, "throttled-1").Attempts > 1 })
		if v := h.alexaEvent(events, "throttled-1"); v.Attempts != 1 {
			t.Fatalf("tried again before Retry-After: %+v", v)
		}
		h.clock.Advance(11 * time.Second)
		if v := h.waitAlexaEventState(events, "throttled-1", "DELIVERED"); v.Attempts != 2 {
			t.Errorf("attempts = %d, want 2", v.Attempts)
		}
	})

	t.Run("UserOrder", func(t *testing.T) {
		h := h.in(t)
		h.linkSkill("orderly", "home")
		gateway.FailNext(2, http.StatusServiceUnavailable, 0)
		var ids []string
		for i := range 6 {
			id := fmt.Sprintf("orderly-%d", i)
			ids = append(ids, id)
			event := changeReport(id, "thermostat")
			if i%2 == 1 {
				event = addOrUpdateReport(id)
			}
			h.submitAlexaEvent(events, id, alexaEventBody("orderly", "home", event, ""))
		}
		// The first event meets two 503s; the others wait behind it.
		for attempts := 1; attempts <= 2; attempts++ {
			h.waitAlexaEvent(events, ids[0], fmt.Sprintf("tried %d times", attempts), func(v alexaEventView) bool { return v.Attempts >= attempts })
			if got := h.received("orderly"); len(got) != 0 {
				t.Fatalf("the gateway received %v while the first event waits for its retry", got)
			}
			h.clock.Advance(time.Hour) // past any backoff
		}
		for _, id := range ids {
			h.waitAlexaEventState(events, id, "DELIVERED")
		}
		if got := h.received("orderly"); !slices.Equal(got, ids) {
			t.Errorf("the gateway received %v, want each once in the order accepted, %v", got, ids)
		}
	})

	t.Run("SkillDisabled", func(t *testing.T) {
		h := h.in(t)
		h.linkSkill("disabled", "home")
		h.linkSkill("disabled", "baby")
		gateway.ForbidUser("disabled", sim.EventSkillDisabled)
		h.submitAlexaEvent(events, "disabled-1", alexaEventBody("disabled", "home", changeReport("disabled-1", "thermostat"), ""))
		v := h.waitAlexaEventState(events, "disabled-1", "FAILED")
		if v.Attempts != 1 || v.LastError == "" {
			t.Errorf("after a 403: %+v, want FAILED after one attempt, with the reason", v)
		}
		if _, l, body := h.getLink("disabled", "home"); l.State != "RELINK_REQUIRED" {
			t.Errorf("GET the home link after a 403: %s, want RELINK_REQUIRED", body)
		}
		if _, l, body := h.getLink("disabled", "baby"); l.State != "LINKED" {
			t.Errorf("GET the baby link after the home skill's 403: %s, want it LINKED still", body)
		}
		var relink []eventView
		waitFor(t, 10*time.Second, "link.relink_required event", func() bool {
			relink = slices.DeleteFunc(h.linkEvents("disabled", "home"), func(e eventView) bool { return e.Type != "link.relink_required" })
			return len(relink) > 0
		})
		if e := relink[0]; len(relink) != 1 || e.Actor != "broker" || e.SkillID != "home" || e.Data["reason"] != "alexa_forbidden" {
			t.Errorf("relink events %+v, want one by broker in home with reason alexa_forbidden", relink)
		}
		if status, body := h.call("GET", "/v1/links?skill_id=home&state=RELINK_REQUIRED", h.clientToken("broker:admin"), ""); status != http.StatusOK || !strings.Contains(body, `"user_id":"disabled"`) {
			t.Errorf("GET /v1/links?state=RELINK_REQUIRED: %d %s, want the user", status, body)
		}
	})

	t.Run("GRPC", func(t *testing.T) {
		h := h.in(t)
		event, err := structpb.NewStruct(decoded(t, changeReport("grpc-1", "thermostat")).(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		context, err := structpb.NewStruct(decoded(t, changeContext).(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		c := brokerv1.NewAlexaEventServiceClient(h.conn)
		ctx := withBearer(t.Context(), events)
		resp, err := c.SubmitAlexaEvent(ctx, &brokerv1.SubmitAlexaEventRequest{UserId: "owner", SkillId: "home", Event: event, Context: context})
		if err != nil || resp.GetMessageId() != "grpc-1" || resp.GetState() != brokerv1.ReportState_PENDING {
			t.Fatalf("SubmitAlexaEvent: %v, %v", resp, err)
		}
		h.waitAlexaEventState(events, "grpc-1", "DELIVERED")
		got, err := c.GetAlexaEvent(ctx, &brokerv1.GetAlexaEventRequest{MessageId: "grpc-1"})
		if err != nil || got.GetState() != brokerv1.ReportState_DELIVERED || got.GetSkillId() != "home" || got.GetUserId() != "owner" {
			t.Errorf("GetAlexaEvent: %v, %v", got, err)
		}
		var sent struct{ Context any }
		_ = json.Unmarshal(h.lastReceived("owner", "grpc-1").Body, &sent)
		if diff := cmp.Diff(decoded(t, changeContext), sent.Context); diff != "" {
			t.Errorf("context changed on the way (-submitted +sent):\n%s", diff)
		}
	})

	t.Run("DeliveryEvents", func(t *testing.T) {
		h := h.in(t)
		got := map[string]eventView{}
		for _, e := range h.linkEvents("owner", "home") {
			if id, _ := e.Data["message_id"].(string); id != "" {
				got[id] = e
			}
		}
		if e := got["change-1"]; e.Type != "delivery.delivered" || e.Data["kind"] != "alexa_event" || e.SkillID != "home" {
			t.Errorf("the event of change-1's delivery: %+v, want delivery.delivered of kind alexa_event in home", e)
		}
		if e := got["refused-400"]; e.Type != "delivery.failed" || e.Data["kind"] != "alexa_event" || e.Data["last_error"] == "" {
			t.Errorf("the event of refused-400's failure: %+v, want delivery.failed of kind alexa_event with the last error", e)
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		h := h.in(t)
		status, body := h.call("GET", "/metrics", "", "")
		for _, want := range []string{
			`broker_reports_total{event="accepted",kind="alexa_event"}`, `broker_reports_total{event="delivered",kind="alexa_event"}`,
			`broker_reports_total{event="failed",kind="alexa_event"}`, `broker_reports_total{event="retried",kind="alexa_event"}`,
			`broker_report_delivery_seconds_count{kind="alexa_event"}`,
		} {
			value := metricValue(body, want)
			if status != http.StatusOK || value <= 0 {
				t.Errorf("/metrics: %s = %v, want above 0", want, value)
			}
		}
	})

	t.Run("NoSecretLogged", func(t *testing.T) {
		h := h.in(t)
		logs := h.logs.String()
		for _, e := range gateway.Received("owner") {
			if strings.Contains(logs, e.Token) {
				t.Errorf("the logs hold the access token sent with %s", e.MessageID)
			}
		}
	})
}

// metricValue returns the value of the Prometheus series named exactly
// series (name and labels) in the text exposition body, or -1 when it is
// absent.
func metricValue(body, series string) float64 {
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}
