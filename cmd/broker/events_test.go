package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
)

// eventView is one event as the API answers it.
type eventView struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt string         `json:"occurred_at"`
	UserID     string         `json:"user_id"`
	SkillID    string         `json:"skill_id"`
	Actor      string         `json:"actor"`
	Data       map[string]any `json:"data"`
}

// events reads every event GET path answers (a listing of events), following
// next_page_token, newest first; it checks that each event has exactly the
// contract's fields.
func (h *harness) events(path string) []eventView {
	h.tb.Helper()
	admin := h.clientToken("broker:admin")
	var all []eventView
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	token := ""
	for range 100 {
		status, body := h.call("GET", path+sep+"page_size=2&page_token="+url.QueryEscape(token), admin, "")
		if status != http.StatusOK {
			h.tb.Fatalf("GET %s: %d %s", path, status, body)
		}
		var page struct {
			Events        []map[string]json.RawMessage `json:"events"`
			NextPageToken string                       `json:"next_page_token"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			h.tb.Fatalf("GET %s: %v: %s", path, err, body)
		}
		for _, raw := range page.Events {
			var keys []string
			for k := range raw {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"actor", "data", "id", "occurred_at", "skill_id", "type", "user_id"}; !slices.Equal(keys, want) {
				h.tb.Errorf("event fields %v, want %v", keys, want)
			}
			b, _ := json.Marshal(raw)
			var e eventView
			if err := json.Unmarshal(b, &e); err != nil {
				h.tb.Fatal(err)
			}
			if _, err := time.Parse(time.RFC3339, e.OccurredAt); err != nil || !strings.HasPrefix(e.ID, "evt_") || e.SkillID != "default" {
				h.tb.Errorf("event %+v: want an evt_ id, an RFC 3339 time (%v) and the default skill", e, err)
			}
			all = append(all, e)
		}
		if token = page.NextPageToken; token == "" {
			return all
		}
	}
	h.tb.Fatalf("GET %s did not end", path)
	return nil
}

// userEvents returns user's events oldest first, without ids and times.
func (h *harness) userEvents(user string) []eventView {
	h.tb.Helper()
	got := h.events("/v1/links/" + url.PathEscape(user) + "/events")
	slices.Reverse(got)
	for i := range got {
		got[i].ID, got[i].OccurredAt = "", ""
	}
	return got
}

// waitEvents polls user's events until there are n, within 10 s.
func (h *harness) waitEvents(user string, n int) []eventView {
	h.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := h.userEvents(user)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.tb.Fatalf("%s has %d events after 10s, want %d: %+v", user, len(got), n, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// assertUserEvents fails the test unless user's events, oldest first, are want.
func assertUserEvents(tb testing.TB, h *harness, user string, want ...eventView) {
	tb.Helper()
	if diff := cmp.Diff(want, h.waitEvents(user, len(want))); diff != "" {
		tb.Errorf("events of %s (-want +got):\n%s", user, diff)
	}
}

// linkView is the part of GET /v1/links/{user_id} the events refer to.
type linkView struct {
	Region               string `json:"region"`
	AccessTokenExpiresAt string `json:"access_token_expires_at"`
}

func (h *harness) linkOf(user string) linkView {
	h.tb.Helper()
	status, body := h.call("GET", "/v1/links/"+user, h.clientToken("broker:admin"), "")
	if status != http.StatusOK {
		h.tb.Fatalf("GET link %s: %d %s", user, status, body)
	}
	var l linkView
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		h.tb.Fatal(err)
	}
	return l
}

// sameTime fails the test unless a and b are the same RFC 3339 instant.
func sameTime(tb testing.TB, what, a, b string) {
	tb.Helper()
	ta, err1 := time.Parse(time.RFC3339, a)
	tb2, err2 := time.Parse(time.RFC3339, b)
	if err1 != nil || err2 != nil || !ta.Equal(tb2) {
		tb.Errorf("%s: %q and %q differ (%v, %v)", what, a, b, err1, err2)
	}
}

// TestEvents runs every event type through the real flow, on each store:
// Alexa's hand-over, refreshes by a caller and an operator, LWA's
// invalid_grant, Alexa's 403, deliveries, and a deletion by the skill backend;
// then the audit API.
func TestEvents(t *testing.T) {
	settings := map[string]string{"BROKER_ALEXA_REGION": "EU", "BROKER_BACKGROUND_REFRESH": "0s"}
	t.Run("bolt", func(t *testing.T) {
		testEvents(t, newHarnessWith(t, sim.SetOptions{}, settings))
	})
	t.Run("dynamodb", func(t *testing.T) {
		endpoint := dynamotest.Start(t)
		table := dynamotest.NewTable(t, endpoint)
		fakeAWSEnv(t)
		testEvents(t, newHarnessWith(t, sim.SetOptions{}, map[string]string{
			"BROKER_STORE":             "dynamodb:" + table,
			"BROKER_DYNAMODB_ENDPOINT": endpoint, "BROKER_DYNAMODB_CREATE_TABLE": "true",
			"BROKER_ALEXA_REGION": "EU", "BROKER_BACKGROUND_REFRESH": "0s",
		}))
	})
}

func testEvents(t *testing.T, h *harness) {
	tokensScope, admin := h.clientToken("broker:tokens"), h.clientToken("broker:admin")
	skill := h.sims.Auth.ClientToken("skill-backend", []string{"broker:events"}, time.Hour)
	linked := func(relinked bool) eventView {
		return eventView{Type: "link.linked", UserID: "parent", SkillID: "default", Actor: "alexa",
			Data: map[string]any{"region": "EU", "relinked": relinked}}
	}

	t.Run("Linked", func(t *testing.T) {
		form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor("parent")}, "client_id": {alexaClient}}
		for range 2 { // Alexa's retry of the same code records nothing more
			if status, body, _ := h.authorize(form, "Bearer "+h.userToken("parent")); status != http.StatusOK {
				t.Fatalf("hand-over: %d %s", status, body)
			}
		}
		if region := h.linkOf("parent").Region; region != "EU" {
			t.Fatalf("link region %q, want EU", region)
		}
		assertUserEvents(t, h, "parent", linked(false))
		h.link("parent")
		assertUserEvents(t, h, "parent", linked(false), linked(true))
	})

	refreshed := func(trigger, actor string) eventView {
		return eventView{Type: "link.refreshed", UserID: "parent", SkillID: "default", Actor: actor,
			Data: map[string]any{"trigger": trigger, "access_token_expires_at": "?"}}
	}
	// lastRefresh checks the last event's expiry against the link's, then
	// blanks the expiry of every refresh for comparison.
	lastRefresh := func(t *testing.T) []eventView {
		t.Helper()
		got := h.userEvents("parent")
		last := got[len(got)-1]
		exp, _ := last.Data["access_token_expires_at"].(string)
		sameTime(t, "access_token_expires_at", exp, h.linkOf("parent").AccessTokenExpiresAt)
		for _, e := range got {
			if e.Type == "link.refreshed" {
				e.Data["access_token_expires_at"] = "?"
			}
		}
		return got
	}

	t.Run("RefreshedByCaller", func(t *testing.T) {
		h.clock.Advance(56 * time.Minute)
		if status, body := h.call("POST", "/v1/partner-token", tokensScope, `{"user_id":"parent"}`); status != http.StatusOK {
			t.Fatalf("partner token: %d %s", status, body)
		}
		want := []eventView{linked(false), linked(true), refreshed("caller", "broker")}
		if diff := cmp.Diff(want, lastRefresh(t)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	t.Run("RefreshedByOperator", func(t *testing.T) {
		if status, body := h.call("POST", "/v1/links/parent:refresh", admin, ""); status != http.StatusOK {
			t.Fatalf("refresh: %d %s", status, body)
		}
		want := []eventView{linked(false), linked(true), refreshed("caller", "broker"), refreshed("operator", "companion-backend")}
		if diff := cmp.Diff(want, lastRefresh(t)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	t.Run("Delivered", func(t *testing.T) {
		id := h.submit(h.clientToken("broker:profiles"), jenny("parent", ""))
		h.waitState(h.clientToken("broker:profiles"), id, "DELIVERED")
		got := h.waitEvents("parent", 5)
		if diff := cmp.Diff(eventView{Type: "delivery.delivered", UserID: "parent", SkillID: "default", Actor: "broker",
			Data: map[string]any{"message_id": id, "kind": "profile_report"}}, got[len(got)-1]); diff != "" {
			t.Errorf("last event (-want +got):\n%s", diff)
		}
	})

	t.Run("RelinkRequiredInvalidGrant", func(t *testing.T) {
		h.link("revoked")
		h.sims.LWA.RevokeUser("revoked")
		h.clock.Advance(56 * time.Minute)
		for range 2 {
			if status, _ := h.call("POST", "/v1/partner-token", tokensScope, `{"user_id":"revoked"}`); status != http.StatusPreconditionFailed {
				t.Fatalf("status %d, want 412", status)
			}
		}
		got := h.userEvents("revoked")
		if diff := cmp.Diff(eventView{Type: "link.relink_required", UserID: "revoked", SkillID: "default", Actor: "broker",
			Data: map[string]any{"reason": "invalid_grant"}}, got[len(got)-1]); diff != "" || len(got) != 2 {
			t.Errorf("events %+v; last (-want +got):\n%s", got, diff)
		}
	})

	t.Run("AlexaForbidden", func(t *testing.T) {
		h.link("disabled")
		h.sims.Alexa.RevokeUser("disabled")
		id := h.submit(h.clientToken("broker:profiles"), jenny("disabled", ""))
		v := h.waitState(h.clientToken("broker:profiles"), id, "FAILED")
		got := h.waitEvents("disabled", 3)
		want := []eventView{
			{Type: "link.linked", UserID: "disabled", SkillID: "default", Actor: "alexa", Data: map[string]any{"region": "EU", "relinked": false}},
			{Type: "link.relink_required", UserID: "disabled", SkillID: "default", Actor: "broker", Data: map[string]any{"reason": "alexa_forbidden"}},
			{Type: "delivery.failed", UserID: "disabled", SkillID: "default", Actor: "broker",
				Data: map[string]any{"message_id": id, "kind": "profile_report", "last_error": v.LastError}},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})

	t.Run("Stats", func(t *testing.T) {
		want := map[string]map[string]int{
			"links":      {"LINKED": 1, "RELINK_REQUIRED": 2},
			"deliveries": {"PENDING": 0, "DELIVERED": 1, "FAILED": 1, "SUPERSEDED": 0},
			"webhooks":   {"PENDING": 0},
		}
		// Within seconds of the last change, on every store.
		deadline := time.Now().Add(5 * time.Second)
		for {
			status, body := h.call("GET", "/v1/stats", admin, "")
			if status != http.StatusOK {
				t.Fatalf("stats: %d %s", status, body)
			}
			var stats map[string]map[string]int
			if err := json.Unmarshal([]byte(body), &stats); err != nil {
				t.Fatalf("stats %s: %v", body, err)
			}
			diff := cmp.Diff(want, stats)
			if diff == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stats after 5s (-want +got):\n%s", diff)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("ListLinksByState", func(t *testing.T) {
		resp, err := brokerv1.NewLinkServiceClient(h.conn).ListLinks(withBearer(t.Context(), admin),
			&brokerv1.ListLinksRequest{State: brokerv1.LinkState_RELINK_REQUIRED})
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, l := range resp.GetLinks() {
			users = append(users, l.GetUserId())
		}
		if got := strings.Join(users, ","); got != "disabled,revoked" {
			t.Errorf("RELINK_REQUIRED links %s, want disabled,revoked", got)
		}
		status, body := h.call("GET", "/v1/links?state=RELINK_REQUIRED", admin, "")
		if status != http.StatusOK || !strings.Contains(body, `"disabled"`) || strings.Contains(body, `"parent"`) {
			t.Errorf("GET /v1/links?state=RELINK_REQUIRED: %d %s", status, body)
		}
	})

	t.Run("DeletedBySkillBackend", func(t *testing.T) {
		if status, body := h.call("DELETE", "/v1/links/parent?reason=skill_disabled", skill, ""); status != http.StatusOK {
			t.Fatalf("delete: %d %s", status, body)
		}
		got := h.waitEvents("parent", 6) // kept after the link is gone
		if diff := cmp.Diff(eventView{Type: "link.deleted", UserID: "parent", SkillID: "default", Actor: "skill-backend",
			Data: map[string]any{"reason": "skill_disabled"}}, got[len(got)-1]); diff != "" || len(got) != 6 {
			t.Errorf("%d events; last (-want +got):\n%s", len(got), diff)
		}
		if status, _ := h.call("GET", "/v1/events", skill, ""); status != http.StatusForbidden {
			t.Errorf("events with broker:events: status %d, want 403", status)
		}
	})

	t.Run("ListEventsByType", func(t *testing.T) {
		all := h.events("/v1/events")
		types := map[string]int{}
		for i, e := range all {
			types[e.Type]++
			if i > 0 && e.OccurredAt > all[i-1].OccurredAt && e.ID > all[i-1].ID {
				t.Errorf("event %d (%s) is newer than the one before it: not newest first", i, e.ID)
			}
		}
		want := map[string]int{"link.linked": 4, "link.refreshed": 2, "link.relink_required": 2,
			"link.deleted": 1, "delivery.delivered": 1, "delivery.failed": 1}
		if diff := cmp.Diff(want, types); diff != "" {
			t.Errorf("events by type (-want +got):\n%s", diff)
		}
		relinks := h.events("/v1/events?type=link.relink_required")
		if len(relinks) != 2 {
			t.Errorf("link.relink_required events: %+v, want 2", relinks)
		}
		for _, e := range relinks {
			if e.Type != "link.relink_required" {
				t.Errorf("type filter let %s through", e.Type)
			}
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		_, body := h.call("GET", "/metrics", "", "")
		for _, want := range []string{
			`broker_events_total{skill="default",type="link.linked"} 4`,
			`broker_events_total{skill="default",type="link.refreshed"} 2`,
			`broker_events_total{skill="default",type="link.relink_required"} 2`,
			`broker_events_total{skill="default",type="link.deleted"} 1`,
			`broker_events_total{skill="default",type="delivery.delivered"} 1`,
			`broker_events_total{skill="default",type="delivery.failed"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// TestEvents_BackgroundRefresh: a refresh that background refresh made is
// recorded with the trigger background.
func TestEvents_BackgroundRefresh(t *testing.T) {
	h := newHarnessWith(t, sim.SetOptions{}, nil)
	h.main.Close()
	h.conn.Close()
	h.backgroundInterval = 20 * time.Millisecond
	h.start()
	h.link("parent")
	if status, body := h.call("POST", "/v1/partner-token", h.clientToken("broker:tokens"), `{"user_id":"parent"}`); status != http.StatusOK {
		t.Fatalf("partner token: %d %s", status, body)
	}
	h.clock.Advance(56 * time.Minute)
	got := h.waitEvents("parent", 2)
	if got[1].Type != "link.refreshed" || got[1].Actor != "broker" || got[1].Data["trigger"] != "background" {
		t.Errorf("events %+v, want link.refreshed by broker, trigger background", got)
	}
}
