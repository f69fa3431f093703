package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/server"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// fakePending is a hand-written server.PendingDeliveries: its page and lanes
// are its fields, and it records what it was asked.
type fakePending struct {
	page  reports.ReportPage
	lanes map[string][]*reports.Report

	mu            sync.Mutex
	cursor        string
	limit         int
	lanesAskedFor []string
}

var _ server.PendingDeliveries = (*fakePending)(nil)

func (f *fakePending) PendingReports(_ context.Context, cursor string, limit int) (reports.ReportPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cursor == "bad" {
		return reports.ReportPage{}, tokens.Errorf(tokens.EINVALID, "not a cursor")
	}
	f.cursor, f.limit = cursor, limit
	return f.page, nil
}

func (f *fakePending) LanePendingReports(_ context.Context, lane string) ([]*reports.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lanesAskedFor = append(f.lanesAskedFor, lane)
	return f.lanes[lane], nil
}

// asked returns the last page asked for and the lanes asked for since the last call.
func (f *fakePending) asked() (string, int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lanes := f.lanesAskedFor
	f.lanesAskedFor = nil
	return f.cursor, f.limit, lanes
}

func TestEventService_ListPendingDeliveries(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	report := &reports.Report{
		MessageID: "r-1", UserID: "parent-1", State: reports.StatePending, Attempts: 2,
		LastError: "Alexa answered 503", SubmittedAt: t0, NextAttemptAt: t0.Add(time.Minute),
	}
	event := &reports.Report{
		MessageID: "e-1", UserID: "parent-1", SkillID: "home", Kind: reports.KindAlexaEvent, State: reports.StatePending,
		SubmittedAt: t0, NextAttemptAt: t0,
	}
	babyReport := &reports.Report{
		MessageID: "r-2", UserID: "parent-2", SkillID: "baby", Kind: reports.KindProfileReport, State: reports.StatePending,
		SubmittedAt: t0, NextAttemptAt: t0,
	}
	homeReport := *report
	homeReport.SkillID = "home"
	src := &fakePending{
		page: reports.ReportPage{Reports: []*reports.Report{report, event, babyReport}, Next: "cursor-2"},
		lanes: map[string][]*reports.Report{
			reports.Lane(reports.KindProfileReport, "home", "parent-1"): {&homeReport},
			reports.Lane(reports.KindAlexaEvent, "home", "parent-1"):    {event},
		},
	}
	homeSvc := tokens.NewService(newMemLinks(), nil, nil)
	homeSvc.SkillID = "home"
	babySvc := tokens.NewService(newMemLinks(), nil, nil)
	babySvc.SkillID = "baby"
	s := open(t, server.Options{
		Authenticator: clientAuthn{},
		Services: server.Services{Events: server.NewEventService(server.EventSources{
			Pending: src, Skills: mustServices(t, homeSvc, babySvc),
		})},
	})
	client := brokerv1.NewEventServiceClient(dial(t, s))
	reportJSON := `{"message_id":"r-1","kind":"profile_report","user_id":"parent-1","skill_id":"default","state":"PENDING",
		"attempts":2,"last_error":"Alexa answered 503","submitted_at":"2026-12-01T10:00:00Z","next_attempt_at":"2026-12-01T10:01:00Z"}`
	homeReportJSON := strings.Replace(reportJSON, `"default"`, `"home"`, 1)
	eventJSON := `{"message_id":"e-1","kind":"alexa_event","user_id":"parent-1","skill_id":"home","state":"PENDING",
		"attempts":0,"last_error":"","submitted_at":"2026-12-01T10:00:00Z","next_attempt_at":"2026-12-01T10:00:00Z"}`
	babyJSON := `{"message_id":"r-2","kind":"profile_report","user_id":"parent-2","skill_id":"baby","state":"PENDING",
		"attempts":0,"last_error":"","submitted_at":"2026-12-01T10:00:00Z","next_attempt_at":"2026-12-01T10:00:00Z"}`

	for _, tt := range []struct {
		name, path, want string
		cursor           string
		limit            int
		lanes            []string
	}{
		{"Page", "/v1/pending-deliveries?page_size=2&page_token=cursor-1",
			`{"deliveries":[` + reportJSON + `,` + eventJSON + `,` + babyJSON + `],"next_page_token":"cursor-2"}`, "cursor-1", 2, nil},
		{"Kind", "/v1/pending-deliveries?kind=alexa_event",
			`{"deliveries":[` + eventJSON + `],"next_page_token":"cursor-2"}`, "", 0, nil},
		{"Skill", "/v1/pending-deliveries?skill_id=baby",
			`{"deliveries":[` + babyJSON + `],"next_page_token":"cursor-2"}`, "", 0, nil},
		{"User", "/v1/pending-deliveries?user_id=parent-1&skill_id=home",
			`{"deliveries":[` + homeReportJSON + `,` + eventJSON + `],"next_page_token":""}`, "", 0,
			[]string{reports.Lane(reports.KindProfileReport, "home", "parent-1"), reports.Lane(reports.KindAlexaEvent, "home", "parent-1")}},
		{"UserAndKind", "/v1/pending-deliveries?user_id=parent-1&skill_id=home&kind=alexa_event",
			`{"deliveries":[` + eventJSON + `],"next_page_token":""}`, "", 0,
			[]string{reports.Lane(reports.KindAlexaEvent, "home", "parent-1")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := doAs(t, s, opsToken, "GET", tt.path)
			if code != http.StatusOK {
				t.Fatalf("status = %d (%s)", code, body)
			}
			assertJSON(t, body, tt.want)
			cursor, limit, lanes := src.asked()
			if tt.lanes == nil && (cursor != tt.cursor || limit != tt.limit) {
				t.Errorf("asked PendingReports(%q, %d), want (%q, %d)", cursor, limit, tt.cursor, tt.limit)
			}
			if len(lanes) != len(tt.lanes) || (len(lanes) > 0 && lanes[0] != tt.lanes[0]) {
				t.Errorf("asked for lanes %q, want %q", lanes, tt.lanes)
			}
		})
	}

	for _, tt := range []struct {
		name, path string
		req        *brokerv1.ListPendingDeliveriesRequest
	}{
		{"UnknownKind", "/v1/pending-deliveries?kind=letter", &brokerv1.ListPendingDeliveriesRequest{Kind: "letter"}},
		{"NegativePageSize", "/v1/pending-deliveries?page_size=-1", &brokerv1.ListPendingDeliveriesRequest{PageSize: -1}},
		{"BadCursor", "/v1/pending-deliveries?page_token=bad", &brokerv1.ListPendingDeliveriesRequest{PageToken: "bad"}},
		{"UserWithoutSkill", "/v1/pending-deliveries?user_id=parent-1", &brokerv1.ListPendingDeliveriesRequest{UserId: "parent-1"}},
		{"UnknownSkill", "/v1/pending-deliveries?user_id=parent-1&skill_id=garden", &brokerv1.ListPendingDeliveriesRequest{UserId: "parent-1", SkillId: "garden"}},
	} {
		t.Run(tt.name+"/HTTP", func(t *testing.T) {
			if code, body := doAs(t, s, opsToken, "GET", tt.path); code != http.StatusBadRequest {
				t.Errorf("status = %d (%s), want 400", code, body)
			}
		})
		t.Run(tt.name+"/gRPC", func(t *testing.T) {
			_, err := client.ListPendingDeliveries(as(t.Context(), opsToken), tt.req)
			if got := status.Code(err); got != codes.InvalidArgument {
				t.Errorf("code = %v, want InvalidArgument", got)
			}
		})
	}
}
