package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// twoSkills are the skills of the tests of a broker that serves several: baby,
// a baby-activity skill in North America that Alexa links by the reciprocal
// hand-over, and home, a smart-home skill in Europe linked by AcceptGrant.
// Neither is the default skill, so a call must name its skill.
var twoSkills = []sim.Skill{{ID: "baby", Region: "NA"}, {ID: "home", Region: "EU"}}

// skill returns the simulators' skill id, with its client ids, failing the
// test when there is none.
func (h *harness) skill(id string) sim.Skill {
	h.tb.Helper()
	sk, ok := h.sims.Skill(id)
	if !ok {
		h.tb.Fatalf("no skill %q in the simulators", id)
	}
	return sk
}

// skillCode is a fresh LWA code for user, issued to the LWA client of skillID.
func (h *harness) skillCode(user, skillID string) string {
	h.tb.Helper()
	code, err := h.sims.IssueCodeForSkill(user, skillID)
	if err != nil {
		h.tb.Fatal(err)
	}
	return code
}

// linkSkill runs Alexa's hand-over of user in skillID, with the skill's Alexa
// client and a code of the skill's LWA client, and fails the test unless it
// succeeds.
func (h *harness) linkSkill(user, skillID string) {
	h.tb.Helper()
	client := h.skill(skillID).AlexaClientID
	form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.skillCode(user, skillID)}, "client_id": {client}}
	if status, body, _ := h.authorize(form, "Bearer "+h.sims.Auth.UserToken(user, client, time.Hour)); status != http.StatusOK || body != "{}" {
		h.tb.Fatalf("hand-over of %s in %s: %d %s", user, skillID, status, body)
	}
}

// partnerToken asks for user's partner token in skillID over HTTP and
// returns it, failing the test unless the answer is 200.
func (h *harness) partnerToken(user, skillID string) string {
	h.tb.Helper()
	status, body := h.call("POST", "/v1/partner-token", h.clientToken("broker:tokens"), `{"user_id":"`+user+`","skill_id":"`+skillID+`"}`)
	var got struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &got); status != http.StatusOK || err != nil || got.AccessToken == "" {
		h.tb.Fatalf("partner token of %s in %s: %d %s", user, skillID, status, body)
	}
	return got.AccessToken
}

// skillLink is GET /v1/links/{user_id}, the fields these tests look at.
type skillLink struct {
	UserID  string `json:"user_id"`
	SkillID string `json:"skill_id"`
	State   string `json:"state"`
	Region  string `json:"region"`
}

// getLink reads user's link in skillID ("" leaves skill_id out) and returns
// the status and the link.
func (h *harness) getLink(user, skillID string) (int, skillLink, string) {
	h.tb.Helper()
	path := "/v1/links/" + url.PathEscape(user)
	if skillID != "" {
		path += "?skill_id=" + skillID
	}
	status, body := h.call("GET", path, h.clientToken("broker:admin"), "")
	var l skillLink
	if status == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			h.tb.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return status, l, body
}

// linkEvents returns user's events in skillID, newest first, in one page.
func (h *harness) linkEvents(user, skillID string) []eventView {
	h.tb.Helper()
	path := "/v1/links/" + url.PathEscape(user) + "/events?page_size=100"
	if skillID != "" {
		path += "&skill_id=" + skillID
	}
	status, body := h.call("GET", path, h.clientToken("broker:admin"), "")
	var page struct {
		Events        []eventView `json:"events"`
		NextPageToken string      `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(body), &page); status != http.StatusOK || err != nil || page.NextPageToken != "" {
		h.tb.Fatalf("GET %s: %d %s (%v)", path, status, body, err)
	}
	return page.Events
}

// TestSkills: one broker serves two skills from its skills file. The same
// user is linked in both, each link with its own tokens from the skill's LWA
// client; calls name their skill or are refused naming skill_id; links,
// events and reports answer with their skill; the hand-over finds its skill
// from the form's client_id, and a token of the other skill's client is
// invalid_client.
func TestSkills(t *testing.T) {
	h := newHarnessWith(t, sim.SetOptions{Skills: twoSkills}, nil)
	tokensScope, admin := h.clientToken("broker:tokens"), h.clientToken("broker:admin")
	h.linkSkill("parent", "baby")
	h.linkSkill("parent", "home")
	h.linkSkill("baby-only", "baby")

	t.Run("OwnTokens", func(t *testing.T) {
		h := h.in(t)
		got := map[string]string{}
		for _, id := range []string{"baby", "home"} {
			tok := h.partnerToken("parent", id)
			if client, ok := h.sims.LWA.AccessTokenClient(tok); !ok || client != h.skill(id).LWAClientID {
				t.Errorf("%s: the partner token is of LWA client %q (valid %v), want the skill's, %q", id, client, ok, h.skill(id).LWAClientID)
			}
			if user, _ := h.sims.LWA.AccessTokenUser(tok); user != "parent" {
				t.Errorf("%s: the partner token is %q's, want parent's", id, user)
			}
			resp, err := brokerv1.NewPartnerTokenServiceClient(h.conn).GetPartnerToken(withBearer(t.Context(), tokensScope),
				&brokerv1.GetPartnerTokenRequest{UserId: "parent", SkillId: id})
			if err != nil || resp.GetAccessToken() != tok {
				t.Errorf("%s over gRPC: %v; want the same token as over HTTP", id, err)
			}
			got[id] = tok
		}
		if got["baby"] == got["home"] {
			t.Error("the two skills handed out the same partner token")
		}
	})

	t.Run("SkillIDRequired", func(t *testing.T) {
		h := h.in(t)
		events := h.sims.Auth.ClientToken("skill-backend", []string{"broker:events"}, time.Hour)
		profiles := h.clientToken("broker:profiles")
		for _, skill := range []struct{ name, body, query string }{
			{"LeftOut", ``, ``},
			{"Unknown", `,"skill_id":"garden"`, `?skill_id=garden`},
		} {
			for _, c := range []struct{ method, path, token, body string }{
				{"POST", "/v1/partner-token", tokensScope, `{"user_id":"parent"` + skill.body + `}`},
				{"GET", "/v1/links/parent" + skill.query, admin, ""},
				{"GET", "/v1/links" + skill.query, admin, ""},
				{"DELETE", "/v1/links/parent" + skill.query, admin, ""},
				{"POST", "/v1/links/parent:refresh" + skill.query, admin, ""},
				{"POST", "/v1/profile-reports", profiles, strings.Replace(jenny("parent", ""), `{"user_id":"parent"`, `{"user_id":"parent"`+skill.body, 1)},
				{"POST", "/v1/alexa-events", events, `{"user_id":"parent"` + skill.body + `,"event":` + changeReport("skill-required", "lamp") + `}`},
			} {
				if status, body := h.call(c.method, c.path, c.token, c.body); status != http.StatusBadRequest || !strings.Contains(body, "skill_id") {
					t.Errorf("%s: %s %s: %d %s, want 400 naming skill_id", skill.name, c.method, c.path, status, body)
				}
			}
		}
		_, err := brokerv1.NewPartnerTokenServiceClient(h.conn).GetPartnerToken(withBearer(t.Context(), tokensScope), &brokerv1.GetPartnerTokenRequest{UserId: "parent"})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "skill_id") {
			t.Errorf("GetPartnerToken without skill_id: %v, want INVALID_ARGUMENT naming skill_id", err)
		}
		if _, l, _ := h.getLink("parent", "baby"); l.State != "LINKED" {
			t.Errorf("after the refused calls the baby link is %+v, want it LINKED still", l)
		}
	})

	t.Run("GetLink", func(t *testing.T) {
		h := h.in(t)
		for id, region := range map[string]string{"baby": "NA", "home": "EU"} {
			status, l, body := h.getLink("parent", id)
			if want := (skillLink{UserID: "parent", SkillID: id, State: "LINKED", Region: region}); status != http.StatusOK || l != want {
				t.Errorf("GET the %s link: %d %s, want %+v", id, status, body, want)
			}
		}
		if status, _, body := h.getLink("baby-only", "home"); status != http.StatusNotFound {
			t.Errorf("GET a link of the other skill: %d %s, want 404", status, body)
		}
	})

	t.Run("ListLinks", func(t *testing.T) {
		h := h.in(t)
		for id, want := range map[string][]string{"baby": {"baby-only", "parent"}, "home": {"parent"}} {
			status, body := h.call("GET", "/v1/links?skill_id="+id, admin, "")
			var page struct{ Links []skillLink }
			_ = json.Unmarshal([]byte(body), &page)
			var users []string
			for _, l := range page.Links {
				users = append(users, l.UserID)
				if l.SkillID != id {
					t.Errorf("GET /v1/links?skill_id=%s lists a link of %q", id, l.SkillID)
				}
			}
			if status != http.StatusOK || !slices.Equal(users, want) {
				t.Errorf("GET /v1/links?skill_id=%s: %d %s, want the links of %v", id, status, body, want)
			}
			resp, err := brokerv1.NewLinkServiceClient(h.conn).ListLinks(withBearer(t.Context(), admin), &brokerv1.ListLinksRequest{SkillId: id})
			if err != nil || len(resp.GetLinks()) != len(want) {
				t.Errorf("ListLinks of %s over gRPC: %v, %v; want %d links", id, resp, err, len(want))
			}
		}
	})

	t.Run("HandOverFindsSkill", func(t *testing.T) {
		h := h.in(t)
		baby, home := h.skill("baby").AlexaClientID, h.skill("home").AlexaClientID
		for _, c := range []struct {
			name, codeSkill, formClient, tokenClient string
			status                                   int
			error                                    string
		}{
			{"TokenOfTheOtherSkill", "home", home, baby, 400, "invalid_client"},
			{"FormOfTheOtherSkill", "home", baby, home, 400, "invalid_client"},
			{"UnknownClient", "home", "alexa-garden", "alexa-garden", 400, "invalid_client"},
			{"CodeOfTheOtherSkill", "baby", home, home, 400, "invalid_grant"},
		} {
			t.Run(c.name, func(t *testing.T) {
				h := h.in(t)
				exchanges := h.sims.LWA.Stats().Exchanges
				form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.skillCode("mixed", c.codeSkill)}, "client_id": {c.formClient}}
				status, body, _ := h.authorize(form, "Bearer "+h.sims.Auth.UserToken("mixed", c.tokenClient, time.Hour))
				var got struct{ Error string }
				_ = json.Unmarshal([]byte(body), &got)
				if status != c.status || got.Error != c.error {
					t.Errorf("hand-over: %d %s, want %d %s", status, body, c.status, c.error)
				}
				if c.error == "invalid_client" && h.sims.LWA.Stats().Exchanges != exchanges {
					t.Error("LWA was asked to exchange the code of a refused client")
				}
			})
		}
		for _, id := range []string{"baby", "home"} {
			if status, _, body := h.getLink("mixed", id); status != http.StatusNotFound {
				t.Errorf("after refused hand-overs GET the %s link: %d %s, want 404", id, status, body)
			}
		}
	})

	t.Run("ProfileReport", func(t *testing.T) {
		h := h.in(t)
		profiles := h.clientToken("broker:profiles")
		id := h.submit(profiles, strings.Replace(jenny("parent", ""), `{"user_id":"parent"`, `{"user_id":"parent","skill_id":"baby"`, 1))
		h.waitState(profiles, id, "DELIVERED")
		_, body := h.call("GET", "/v1/profile-reports/"+id, profiles, "")
		if !strings.Contains(body, `"skill_id":"baby"`) {
			t.Errorf("GET the report: %s, want skill_id baby", body)
		}
		if got := h.sims.Alexa.Received("parent"); len(got) == 0 || got[len(got)-1].MessageID != id {
			t.Fatalf("Alexa received %+v, want %s last", got, id)
		}
	})

	t.Run("DeleteLink", func(t *testing.T) {
		h := h.in(t)
		if status, body := h.call("DELETE", "/v1/links/parent?skill_id=baby", admin, ""); status != http.StatusOK {
			t.Fatalf("DELETE the baby link: %d %s", status, body)
		}
		if status, _, body := h.getLink("parent", "baby"); status != http.StatusNotFound {
			t.Errorf("GET the deleted baby link: %d %s, want 404", status, body)
		}
		if status, l, body := h.getLink("parent", "home"); status != http.StatusOK || l.State != "LINKED" {
			t.Errorf("GET the home link after the baby one was deleted: %d %s", status, body)
		}
		h.partnerToken("parent", "home")
		if status, body := h.call("POST", "/v1/partner-token", tokensScope, `{"user_id":"parent","skill_id":"baby"}`); status != http.StatusNotFound {
			t.Errorf("partner token of the deleted link: %d %s, want 404", status, body)
		}
		_, err := brokerv1.NewLinkServiceClient(h.conn).DeleteLink(withBearer(t.Context(), admin), &brokerv1.DeleteLinkRequest{UserId: "parent", SkillId: "baby"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("DeleteLink of the deleted link over gRPC: %v, want NOT_FOUND", err)
		}
	})

	t.Run("Events", func(t *testing.T) {
		h := h.in(t)
		var all []string
		for _, skill := range []string{"baby", "home"} {
			for _, e := range h.linkEvents("parent", skill) {
				all = append(all, e.SkillID+" "+e.Type)
			}
		}
		slices.Sort(all)
		if want := []string{"baby delivery.delivered", "baby link.deleted", "baby link.linked", "home link.linked"}; !slices.Equal(all, want) {
			t.Errorf("parent's events %q, want %q", all, want)
		}
		for _, e := range h.linkEvents("parent", "home") {
			if e.SkillID != "home" {
				t.Errorf("GET events?skill_id=home has %+v", e)
			}
		}
		if got := h.linkEvents("parent", "home"); len(got) != 1 || got[0].Type != "link.linked" || got[0].Data["region"] != "EU" {
			t.Errorf("parent's home events %+v, want one link.linked in EU", got)
		}
		// Among two skills, none of them default, a user's events are asked
		// for by skill.
		if status, body := h.call("GET", "/v1/links/parent/events", h.clientToken("broker:admin"), ""); status != http.StatusBadRequest || !strings.Contains(body, "skill_id") {
			t.Errorf("GET events without skill_id: %d %s, want 400 naming skill_id", status, body)
		}
	})
}
