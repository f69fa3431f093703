package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/reports"
)

// jenny is a valid profile report body for user, in the API's JSON.
func jenny(user, messageID string) string {
	id := ""
	if messageID != "" {
		id = `,"message_id":"` + messageID + `"`
	}
	return `{"user_id":"` + user + `"` + id + `,"profiles":[{"profileId":"baby-7f3c",
	"name":{"firstName":"Jennifer","lastName":"Doe","nickNames":["Baby","Jenny"]},
	"capabilities":[
	{"name":"Alexa.Health.DiaperChange","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get"]},
	{"name":"Alexa.Health.Sleep","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get","Start","Stop","Cancel","Resume","Pause"]}]}]}`
}

// reportView is GET /v1/profile-reports/{id}.
type reportView struct {
	MessageID   string  `json:"message_id"`
	UserID      string  `json:"user_id"`
	State       string  `json:"state"`
	Attempts    int     `json:"attempts"`
	LastError   string  `json:"last_error"`
	DeliveredAt *string `json:"delivered_at"`
}

// submit posts a report and returns its message id, failing unless 202 PENDING.
func (h *harness) submit(token, body string) string {
	h.tb.Helper()
	status, resp := h.call("POST", "/v1/profile-reports", token, body)
	var got struct{ MessageID, State string }
	_ = json.Unmarshal([]byte(strings.ReplaceAll(resp, "message_id", "messageid")), &got)
	if status != http.StatusAccepted || got.State != "PENDING" || got.MessageID == "" {
		h.tb.Fatalf("submit: %d %s, want 202 PENDING with a message id", status, resp)
	}
	return got.MessageID
}

// report reads a report's state.
func (h *harness) report(token, id string) reportView {
	h.tb.Helper()
	status, body := h.call("GET", "/v1/profile-reports/"+id, token, "")
	if status != 200 {
		h.tb.Fatalf("get report %s: %d %s", id, status, body)
	}
	var v reportView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		h.tb.Fatal(err)
	}
	return v
}

// waitState polls a report until it reaches state, within 10 s.
func (h *harness) waitState(token, id, state string) reportView {
	h.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := h.report(token, id)
		if v.State == state {
			return v
		}
		if time.Now().After(deadline) {
			h.tb.Fatalf("report %s is %s (%s) after 10s, want %s", id, v.State, v.LastError, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFinal polls until a report reaches an end state (DELIVERED, FAILED or
// SUPERSEDED), within d, and returns it. Older reports of a user become
// SUPERSEDED after the newest was delivered, not in the same write.
func (h *harness) waitFinal(token, id string, d time.Duration) reportView {
	h.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		v := h.report(token, id)
		switch v.State {
		case "DELIVERED", "FAILED", "SUPERSEDED":
			return v
		}
		if time.Now().After(deadline) {
			h.tb.Fatalf("report %s is %s (%s) after %s, want an end state", id, v.State, v.LastError, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAttempts polls until a report has been tried n times, within 10 s.
func (h *harness) waitAttempts(token, id string, n int) {
	h.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.report(token, id).Attempts < n {
		if time.Now().After(deadline) {
			h.tb.Fatalf("report %s not tried %d times within 10s", id, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProfileReports(t *testing.T) {
	h := newHarness(t)
	tok := h.clientToken("broker:profiles")
	h.link("parent")

	t.Run("Delivered", func(t *testing.T) {
		id := h.submit(tok, jenny("parent", ""))
		v := h.waitState(tok, id, "DELIVERED")
		if v.Attempts != 1 || v.DeliveredAt == nil || v.UserID != "parent" {
			t.Errorf("report = %+v", v)
		}
		got := h.sims.Alexa.Received("parent")
		if len(got) == 0 || got[len(got)-1].MessageID != id {
			t.Fatalf("Alexa received %+v, want %s last", got, id)
		}
		var body struct {
			Report struct {
				MessageID string           `json:"messageId"`
				Profiles  []map[string]any `json:"profiles"`
			} `json:"report"`
		}
		if err := json.Unmarshal(got[len(got)-1].Body, &body); err != nil || body.Report.MessageID != id || len(body.Report.Profiles) != 1 {
			t.Errorf("Alexa received body %s", got[len(got)-1].Body)
		}
	})
	t.Run("Idempotent", func(t *testing.T) {
		before := len(h.sims.Alexa.Received("parent"))
		id := h.submit(tok, jenny("parent", "fixed-id-1"))
		h.waitState(tok, id, "DELIVERED")
		status, body := h.call("POST", "/v1/profile-reports", tok, jenny("parent", "fixed-id-1"))
		var again map[string]string
		_ = json.Unmarshal([]byte(body), &again)
		if status != http.StatusAccepted || again["message_id"] != "fixed-id-1" || again["state"] != "DELIVERED" || len(again) != 2 {
			t.Errorf("a delivered report submitted again: %d %s, want 202 with its id and state", status, body)
		}
		if status, _ := h.call("POST", "/v1/profile-reports", tok, jenny("disabled", "fixed-id-1")); status != 404 && status != 400 {
			t.Errorf("the message id of another user's report: status %d, want a refusal", status)
		}
		if got := len(h.sims.Alexa.Received("parent")) - before; got != 1 {
			t.Errorf("Alexa received %d reports, want 1", got)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range []struct{ name, from, to, field string }{
			{"NoNickname", `"nickNames":["Baby","Jenny"]`, `"nickNames":[]`, "profiles[0].name.nickNames"},
			{"NoFirstName", `"firstName":"Jennifer",`, ``, "profiles[0].name.firstName"},
			{"UnknownInterface", `Alexa.Health.DiaperChange`, `Alexa.Health.Naps`, "profiles[0].capabilities[0].name"},
			{"NoGet", `"supportedOperations":["Add","Delete","Get"]`, `"supportedOperations":["Add"]`, "profiles[0].capabilities[0].supportedOperations"},
			{"BadType", `"type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get"]`, `"type":"Other","version":"1","supportedOperations":["Add","Delete","Get"]`, "profiles[0].capabilities[0].type"},
			{"NoProfileID", `"profileId":"baby-7f3c",`, ``, "profiles[0].profileId"},
			{"BlankNickname", `"nickNames":["Baby","Jenny"]`, `"nickNames":["Baby","  "]`, "profiles[0].name.nickNames[1]"},
			{"BlankFirstName", `"firstName":"Jennifer"`, `"firstName":" \t"`, "profiles[0].name.firstName"},
			{"BlankProfileID", `"profileId":"baby-7f3c"`, `"profileId":"   "`, "profiles[0].profileId"},
			{"BodyTooLarge", `"nickNames":["Baby","Jenny"]`, `"nickNames":["Baby","` + strings.Repeat("y", reports.MaxBodyBytes) + `"]`, "profiles: "},
		} {
			t.Run(tt.name, func(t *testing.T) {
				body := strings.Replace(jenny("parent", ""), tt.from, tt.to, 1)
				status, resp := h.call("POST", "/v1/profile-reports", tok, body)
				if status != 400 || !strings.Contains(resp, tt.field) {
					t.Errorf("got %d %s, want 400 naming %s", status, resp, tt.field)
				}
			})
		}
	})
	t.Run("NotLinked", func(t *testing.T) {
		if status, body := h.call("POST", "/v1/profile-reports", tok, jenny("stranger", "")); status != 404 {
			t.Errorf("got %d %s, want 404", status, body)
		}
	})
	t.Run("MissingScope", func(t *testing.T) {
		if status, _ := h.call("POST", "/v1/profile-reports", h.clientToken("broker:tokens"), jenny("parent", "")); status != 403 {
			t.Errorf("status %d, want 403", status)
		}
	})
	t.Run("UnknownReport", func(t *testing.T) {
		if status, _ := h.call("GET", "/v1/profile-reports/nope", tok, ""); status != 404 {
			t.Errorf("status %d, want 404", status)
		}
	})
	t.Run("GRPC", func(t *testing.T) {
		c := brokerv1.NewProfileReportServiceClient(h.conn)
		_, err := c.GetProfileReport(withBearer(t.Context(), tok), &brokerv1.GetProfileReportRequest{MessageId: "nope"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("GetProfileReport: %v, want NOT_FOUND", err)
		}
	})
	t.Run("TokenRejectedOnce", func(t *testing.T) {
		refreshes := h.sims.LWA.Stats().RefreshesOK
		h.sims.Alexa.RejectTokenNext(1)
		id := h.submit(tok, jenny("parent", ""))
		h.waitState(tok, id, "DELIVERED")
		if got := h.sims.LWA.Stats().RefreshesOK - refreshes; got != 1 {
			t.Errorf("LWA refreshes = %d, want 1 after a 401", got)
		}
	})
	t.Run("ThrottledWithRetryAfter", func(t *testing.T) {
		h.sims.Alexa.ThrottleNext(1, 30*time.Second)
		id := h.submit(tok, jenny("parent", ""))
		h.waitAttempts(tok, id, 1)
		if v := h.report(tok, id); v.State != "PENDING" || !strings.Contains(v.LastError, "429") {
			t.Fatalf("after a 429: %+v, want PENDING with the reason", v)
		}
		h.clock.Advance(20 * time.Second) // not yet: Retry-After is 30 s
		if v := h.report(tok, id); v.Attempts != 1 {
			t.Fatalf("tried again before Retry-After: %+v", v)
		}
		h.clock.Advance(11 * time.Second)
		if v := h.waitState(tok, id, "DELIVERED"); v.Attempts != 2 {
			t.Errorf("attempts = %d, want 2", v.Attempts)
		}
	})
	t.Run("ServerErrorsUntilDeadline", func(t *testing.T) {
		h.link("unlucky")
		h.sims.Alexa.FailNext(1000, http.StatusInternalServerError, 0)
		defer h.sims.Alexa.ClearFaults()
		id := h.submit(tok, jenny("unlucky", ""))
		for i := 1; i <= 3; i++ {
			h.waitAttempts(tok, id, i)
			h.clock.Advance(time.Hour) // past any backoff
		}
		h.clock.Advance(24 * time.Hour)
		v := h.waitState(tok, id, "FAILED")
		if !strings.Contains(v.LastError, "deadline") || !strings.Contains(v.LastError, "500") {
			t.Errorf("last_error = %q, want the deadline and the last 500", v.LastError)
		}
	})
	t.Run("PermissionWithdrawn", func(t *testing.T) {
		h.link("disabled")
		h.sims.Alexa.RevokeUser("disabled")
		id := h.submit(tok, jenny("disabled", ""))
		v := h.waitState(tok, id, "FAILED")
		if v.Attempts != 1 || !strings.Contains(v.LastError, "disabled") {
			t.Errorf("report = %+v, want one attempt and the reason", v)
		}
		if status, body := h.call("GET", "/v1/links/disabled", h.clientToken("broker:tokens"), ""); !strings.Contains(body, "RELINK_REQUIRED") {
			t.Errorf("link after 403: %d %s, want RELINK_REQUIRED", status, body)
		}
	})
	t.Run("RemovedAfterRetention", func(t *testing.T) {
		id := h.submit(tok, jenny("parent", ""))
		h.waitState(tok, id, "DELIVERED")
		h.clock.Advance(8 * 24 * time.Hour)
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, _ := h.call("GET", "/v1/profile-reports/"+id, tok, "")
			if status == 404 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("delivered report still there 8 days later")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		status, body := h.call("GET", "/metrics", "", "")
		for _, want := range []string{`broker_reports_total{event="accepted",kind="profile_report"}`, `broker_reports_total{event="delivered",kind="profile_report"}`,
			`broker_reports_total{event="failed",kind="profile_report"}`, `broker_reports_total{event="retried",kind="alexa_event"}`, "broker_report_delivery_seconds_bucket"} {
			if status != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// TestProfileReports_Restart stops the broker between accepting and delivering;
// the next broker on the same store delivers.
func TestProfileReports_Restart(t *testing.T) {
	h := newHarness(t)
	tok := h.clientToken("broker:profiles")
	h.link("parent")
	h.sims.Alexa.FailNext(1000, http.StatusServiceUnavailable, 0)
	id := h.submit(tok, jenny("parent", ""))
	h.waitAttempts(tok, id, 1)
	h.restart()
	h.sims.Alexa.ClearFaults()
	h.clock.Advance(time.Hour)
	h.waitState(tok, id, "DELIVERED")
}

// TestProfileReports_Load: 1,000 reports for 100 users all end delivered (or
// superseded by a newer delivered one) and every user's reports reach Alexa in
// the order they were submitted.
func TestProfileReports_Load(t *testing.T) {
	h := newHarness(t)
	tok := h.clientToken("broker:profiles")
	const users, perUser = 100, 10
	for u := range users {
		h.link(fmt.Sprint("user-", u))
	}
	ids := make([][]string, users)
	var wg sync.WaitGroup
	for u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perUser {
				ids[u] = append(ids[u], h.submit(tok, jenny(fmt.Sprint("user-", u), fmt.Sprintf("u%d-r%d", u, i))))
			}
		}()
	}
	wg.Wait()
	// Generous bounds: 1,000 reports under -race on a small shared machine.
	for u := range users {
		if v := h.waitFinal(tok, ids[u][perUser-1], time.Minute); v.State != "DELIVERED" {
			t.Errorf("newest report %s of user-%d is %s, want DELIVERED", v.MessageID, u, v.State)
		}
	}
	delivered := 0
	for u := range users {
		order := map[string]int{}
		for i, id := range ids[u] {
			order[id] = i
			switch v := h.waitFinal(tok, id, 30*time.Second); v.State {
			case "DELIVERED":
				delivered++
			case "SUPERSEDED":
			default:
				t.Errorf("report %s is %s", id, v.State)
			}
		}
		last := -1
		for _, r := range h.sims.Alexa.Received(fmt.Sprint("user-", u)) {
			if order[r.MessageID] <= last {
				t.Errorf("user-%d: Alexa received %s after a newer report", u, r.MessageID)
			}
			last = order[r.MessageID]
		}
	}
	t.Logf("%d of %d reports delivered, the rest superseded", delivered, users*perUser)
}
