package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// acceptGrant is Alexa's Alexa.Authorization AcceptGrant directive with
// messageID, the LWA code and the grantee token, as a skill's Lambda receives
// and forwards it.
func acceptGrant(messageID, code, grantee string) string {
	return `{"directive":{"header":{"namespace":"Alexa.Authorization","name":"AcceptGrant","messageId":"` + messageID + `","payloadVersion":"3"},
	"payload":{"grant":{"type":"OAuth2.AuthorizationCode","code":"` + code + `"},"grantee":{"type":"BearerToken","token":"` + grantee + `"}}}}`
}

// alexaAnswer is the broker's answer to AcceptGrant: the event the Lambda
// returns to Alexa.
type alexaAnswer struct {
	Event struct {
		Header struct {
			Namespace      string `json:"namespace"`
			Name           string `json:"name"`
			MessageID      string `json:"messageId"`
			PayloadVersion string `json:"payloadVersion"`
		} `json:"header"`
		Payload map[string]any `json:"payload"`
	} `json:"event"`
}

// uuidV4 is the form of a new messageId.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkAnswer fails the test unless body is Alexa's event named name
// ("AcceptGrant.Response" or "ErrorResponse") with a new UUID messageId other
// than directiveID and payloadVersion "3": an AcceptGrant.Response with an
// empty payload, an ErrorResponse of type ACCEPT_GRANT_FAILED with a message.
// It returns the answer.
func checkAnswer(tb testing.TB, body, name, directiveID string) alexaAnswer {
	tb.Helper()
	var a alexaAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		tb.Fatalf("answer %s: %v", body, err)
	}
	h := a.Event.Header
	if h.Namespace != "Alexa.Authorization" || h.Name != name || h.PayloadVersion != "3" || !uuidV4.MatchString(h.MessageID) || h.MessageID == directiveID {
		tb.Errorf("answer header %+v, want Alexa.Authorization %s, payloadVersion 3 and a new UUID messageId", h, name)
	}
	switch name {
	case "AcceptGrant.Response":
		if len(a.Event.Payload) != 0 {
			tb.Errorf("AcceptGrant.Response payload %v, want {}", a.Event.Payload)
		}
	case "ErrorResponse":
		if a.Event.Payload["type"] != "ACCEPT_GRANT_FAILED" || a.Event.Payload["message"] == "" || len(a.Event.Payload) != 2 {
			tb.Errorf("ErrorResponse payload %v, want type ACCEPT_GRANT_FAILED and a message", a.Event.Payload)
		}
	}
	return a
}

// TestSmartHome_AcceptGrant: the smart-home skill's Lambda forwards Alexa's
// AcceptGrant directive, with a code of the skill's LWA client and the user's
// token from the partner's server as grantee. The broker links the user in
// that skill and answers AcceptGrant.Response; a repeat answers it again
// without a second exchange; every failure is an ErrorResponse with the
// status of the reciprocal table over HTTP, and status OK over gRPC; no
// answer or log line holds a code or a grantee token.
func TestSmartHome_AcceptGrant(t *testing.T) {
	h := newHarnessWith(t, sim.SetOptions{Skills: twoSkills}, nil)
	home, baby := h.skill("home"), h.skill("baby")
	var secrets, answers []string // every code and grantee token sent; every answer
	post := func(t *testing.T, query, directive string) (int, string) {
		t.Helper()
		status, body := h.call("POST", "/v1/smart-home/accept-grant"+query, "", directive)
		answers = append(answers, body)
		return status, body
	}
	code := h.skillCode("homeowner", "home")
	grantee := h.sims.Auth.UserToken("homeowner", home.AlexaClientID, time.Hour)
	secrets = append(secrets, code, grantee)
	directive := acceptGrant("5f8a426e-01e4-4cc9-8b79-65f8bd0fd8a4", code, grantee)

	var first alexaAnswer
	t.Run("Linked", func(t *testing.T) {
		h := h.in(t)
		before := h.sims.LWA.Stats()
		status, body := post(t, "?skill_id=home", directive)
		if status != http.StatusOK {
			t.Fatalf("AcceptGrant: %d %s, want 200", status, body)
		}
		first = checkAnswer(t, body, "AcceptGrant.Response", "5f8a426e-01e4-4cc9-8b79-65f8bd0fd8a4")
		if got := h.sims.LWA.Stats().ExchangesOK - before.ExchangesOK; got != 1 {
			t.Errorf("LWA exchanges = %d, want 1", got)
		}
		if status, l, body := h.getLink("homeowner", "home"); status != http.StatusOK || l.State != "LINKED" || l.Region != "EU" || l.SkillID != "home" {
			t.Errorf("GET the home link: %d %s, want LINKED in EU", status, body)
		}
		if status, _, _ := h.getLink("homeowner", "baby"); status != http.StatusNotFound {
			t.Errorf("GET a baby link: %d, want 404", status)
		}
		if client, _ := h.sims.LWA.AccessTokenClient(h.partnerToken("homeowner", "home")); client != home.LWAClientID {
			t.Errorf("the partner token is of LWA client %q, want the home skill's", client)
		}
		if got := h.linkEvents("homeowner", "home"); len(got) != 1 || got[0].Type != "link.linked" || got[0].SkillID != "home" || got[0].Actor != "alexa" || got[0].Data["region"] != "EU" {
			t.Errorf("events %+v, want one link.linked of home by alexa in EU", got)
		}
	})

	t.Run("Repeated", func(t *testing.T) {
		h := h.in(t)
		before := h.sims.LWA.Stats()
		status, body := post(t, "?skill_id=home", directive)
		if status != http.StatusOK {
			t.Fatalf("the same directive again: %d %s, want 200", status, body)
		}
		if again := checkAnswer(t, body, "AcceptGrant.Response", "5f8a426e-01e4-4cc9-8b79-65f8bd0fd8a4"); again.Event.Header.MessageID == first.Event.Header.MessageID {
			t.Error("the repeat's answer has the first answer's messageId, want a new one")
		}
		if got := h.sims.LWA.Stats(); got.Exchanges != before.Exchanges || got.Requests != before.Requests {
			t.Errorf("the repeat reached LWA: %+v, before %+v", got, before)
		}
		if got := h.linkEvents("homeowner", "home"); len(got) != 1 {
			t.Errorf("the repeat recorded events: %+v", got)
		}
	})

	other, err := sim.NewAuthServer(sim.AuthServerOptions{Issuer: h.sims.Auth.Issuer(), Audience: h.sims.Auth.Audience()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, query, user, code, grantee string
		status                           int
	}{
		{"NotAToken", "?skill_id=home", "u-bad", h.skillCode("u-bad", "home"), "not-a-jwt", 401},
		{"Expired", "?skill_id=home", "u-expired", h.skillCode("u-expired", "home"), h.sims.Auth.UserToken("u-expired", home.AlexaClientID, -5*time.Minute), 401},
		{"ForeignSigner", "?skill_id=home", "u-foreign", h.skillCode("u-foreign", "home"), other.UserToken("u-foreign", home.AlexaClientID, time.Hour), 401},
		{"NoGrantee", "?skill_id=home", "u-none", h.skillCode("u-none", "home"), "", 401},
		{"ClientOfTheOtherSkill", "?skill_id=home", "u-client", h.skillCode("u-client", "home"), h.sims.Auth.UserToken("u-client", baby.AlexaClientID, time.Hour), 400},
		{"CodeOfTheOtherSkill", "?skill_id=home", "u-code", h.skillCode("u-code", "baby"), h.sims.Auth.UserToken("u-code", home.AlexaClientID, time.Hour), 400},
		{"SkillLeftOut", "", "u-skill", h.skillCode("u-skill", "home"), h.sims.Auth.UserToken("u-skill", home.AlexaClientID, time.Hour), 400},
		{"UnknownSkill", "?skill_id=garden", "u-garden", h.skillCode("u-garden", "home"), h.sims.Auth.UserToken("u-garden", home.AlexaClientID, time.Hour), 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := h.in(t)
			secrets = append(secrets, c.code)
			if c.grantee != "" {
				secrets = append(secrets, c.grantee)
			}
			before := h.sims.LWA.Stats().Exchanges
			status, body := post(t, c.query, acceptGrant("directive-"+c.name, c.code, c.grantee))
			if status != c.status {
				t.Errorf("AcceptGrant: %d %s, want %d", status, body, c.status)
			}
			checkAnswer(t, body, "ErrorResponse", "directive-"+c.name)
			if c.name == "SkillLeftOut" || c.name == "UnknownSkill" {
				var a alexaAnswer
				_ = json.Unmarshal([]byte(body), &a)
				if msg, _ := a.Event.Payload["message"].(string); !strings.Contains(msg, "skill_id") {
					t.Errorf("message %q, want it to name skill_id", msg)
				}
			}
			if c.name != "CodeOfTheOtherSkill" && h.sims.LWA.Stats().Exchanges != before {
				t.Error("LWA was asked to exchange the code of a refused directive")
			}
			for _, id := range []string{"home", "baby"} {
				if status, _, _ := h.getLink(c.user, id); status != http.StatusNotFound {
					t.Errorf("the refused directive linked %s in %s", c.user, id)
				}
			}
		})
	}

	t.Run("GRPC", func(t *testing.T) {
		h := h.in(t)
		client := brokerv1.NewSmartHomeServiceClient(h.conn)
		call := func(t *testing.T, skillID, directive string) string {
			t.Helper()
			var d struct{ Directive json.RawMessage }
			if err := json.Unmarshal([]byte(directive), &d); err != nil {
				t.Fatal(err)
			}
			s := &structpb.Struct{}
			if err := protojson.Unmarshal(d.Directive, s); err != nil {
				t.Fatal(err)
			}
			// No bearer: the grantee token is the credential.
			resp, err := client.AcceptGrant(t.Context(), &brokerv1.AcceptGrantRequest{Directive: s, SkillId: skillID})
			if err != nil {
				t.Fatalf("AcceptGrant: %v, want status OK", err)
			}
			event, err := protojson.Marshal(resp.GetEvent())
			if err != nil {
				t.Fatal(err)
			}
			answer := `{"event":` + string(event) + `}`
			answers = append(answers, answer)
			return answer
		}
		code := h.skillCode("grpc-owner", "home")
		grantee := h.sims.Auth.UserToken("grpc-owner", home.AlexaClientID, time.Hour)
		badCode := h.skillCode("grpc-bad", "home")
		secrets = append(secrets, code, grantee, badCode)
		checkAnswer(t, call(t, "home", acceptGrant("grpc-1", code, grantee)), "AcceptGrant.Response", "grpc-1")
		if status, l, body := h.getLink("grpc-owner", "home"); status != http.StatusOK || l.State != "LINKED" {
			t.Errorf("GET the link made over gRPC: %d %s", status, body)
		}
		exchanges := h.sims.LWA.Stats().Exchanges
		checkAnswer(t, call(t, "home", acceptGrant("grpc-2", code, grantee)), "AcceptGrant.Response", "grpc-2")
		if h.sims.LWA.Stats().Exchanges != exchanges {
			t.Error("the repeat over gRPC reached LWA")
		}
		checkAnswer(t, call(t, "home", acceptGrant("grpc-3", badCode, "not-a-jwt")), "ErrorResponse", "grpc-3")
		checkAnswer(t, call(t, "", acceptGrant("grpc-4", badCode, grantee)), "ErrorResponse", "grpc-4")
		checkAnswer(t, call(t, "baby", acceptGrant("grpc-5", badCode, grantee)), "ErrorResponse", "grpc-5")
	})

	t.Run("NoSecrets", func(t *testing.T) {
		logs := h.logs.String()
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("a log line holds a code or grantee token (%d characters)", len(s))
			}
			for _, a := range answers {
				if strings.Contains(a, s) {
					t.Errorf("answer %s holds a code or grantee token", a)
				}
			}
		}
	})
}
