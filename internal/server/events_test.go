package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/server"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// clientAuthn is a hand-written auth.Authenticator whose tokens each grant one
// scope to one client (clientTokens).
type clientAuthn struct{}

var _ auth.Authenticator = clientAuthn{}

// Tokens of clientAuthn.
const (
	opsToken    = "ops"
	skillToken  = "skill"
	tokensToken = "companion"
)

// clientTokens are the client and scope of each token of clientAuthn.
var clientTokens = map[string][2]string{
	opsToken:    {"ops-console", server.ScopeAdmin},
	skillToken:  {"skill-backend", server.ScopeEvents},
	tokensToken: {"companion", server.ScopeTokens},
}

func (clientAuthn) Verify(_ context.Context, raw string) (auth.Principal, error) {
	c, ok := clientTokens[raw]
	if !ok {
		return auth.Principal{}, tokens.Errorf(tokens.EUNAUTHENTICATED, "token is expired")
	}
	return auth.Principal{Subject: c[0], ClientID: c[0], Scopes: []string{c[1]}}, nil
}

// fakeEvents is a hand-written tokens.EventStore, tokens.LinkCounter,
// reports.Counter and server.WebhookBacklog: it answers with its fields and
// records the last listing asked for.
type fakeEvents struct {
	page     tokens.EventPage
	links    map[tokens.State]int
	reports  map[reports.State]int
	webhooks int

	mu     sync.Mutex
	filter tokens.EventFilter
	cursor string
	limit  int
}

var (
	_ tokens.EventStore     = (*fakeEvents)(nil)
	_ tokens.LinkCounter    = (*fakeEvents)(nil)
	_ reports.Counter       = (*fakeEvents)(nil)
	_ server.WebhookBacklog = (*fakeEvents)(nil)
)

func (f *fakeEvents) ListEvents(_ context.Context, filter tokens.EventFilter, cursor string, limit int) (tokens.EventPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter, f.cursor, f.limit = filter, cursor, limit
	return f.page, nil
}

func (f *fakeEvents) DeleteEventsBefore(context.Context, time.Time) (int, error) { return 0, nil }

func (f *fakeEvents) CountLinks(context.Context) (map[tokens.State]int, error) { return f.links, nil }

func (f *fakeEvents) CountReports(context.Context) (map[reports.State]int, error) {
	return f.reports, nil
}

func (f *fakeEvents) WebhookBacklog(context.Context) (int, time.Time, error) {
	return f.webhooks, time.Time{}, nil
}

// asked returns the last listing asked for.
func (f *fakeEvents) asked() (tokens.EventFilter, string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.filter, f.cursor, f.limit
}

// sampleEvent is an event as the contract shows one.
var sampleEvent = tokens.Event{
	ID: "evt_01JDAAAAAAAAAAAAAAAAAAAAAA", Type: tokens.EventLinked,
	OccurredAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
	UserID:     "parent-123", SkillID: "default", Actor: "alexa",
	Data: map[string]any{"region": "EU", "relinked": true},
}

// sampleEventJSON is sampleEvent's JSON, exactly.
const sampleEventJSON = `{"id":"evt_01JDAAAAAAAAAAAAAAAAAAAAAA","type":"link.linked","occurred_at":"2026-12-01T10:00:00Z",
 "user_id":"parent-123","skill_id":"default","actor":"alexa","data":{"region":"EU","relinked":true}}`

// doAs sends an HTTP request to s with token and returns the status and body.
func doAs(tb testing.TB, s *server.Server, token, method, path string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(method, "http://"+s.HTTPAddr()+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// as returns ctx with token as the gRPC bearer token.
func as(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// assertJSON fails the test unless got and want are the same JSON value.
func assertJSON(tb testing.TB, got, want string) {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		tb.Fatalf("body %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatalf("want %q is not JSON: %v", want, err)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		tb.Errorf("JSON (-want +got):\n%s", diff)
	}
}

func TestEventService(t *testing.T) {
	src := &fakeEvents{
		page:     tokens.EventPage{Events: []tokens.Event{sampleEvent}, Next: "cursor-2"},
		links:    map[tokens.State]int{tokens.StateLinked: 3},
		reports:  map[reports.State]int{reports.StatePending: 2, reports.StateFailed: 1},
		webhooks: 4,
	}
	s := open(t, server.Options{
		Authenticator: clientAuthn{},
		Services: server.Services{Events: server.NewEventService(server.EventSources{
			Events: src, Links: src, Reports: src, Webhooks: src,
			SkillLinks: map[string]tokens.LinkCounter{"baby": src, "home": &fakeEvents{}},
		})},
	})
	client := brokerv1.NewEventServiceClient(dial(t, s))
	pageJSON := `{"events":[` + sampleEventJSON + `],"next_page_token":"cursor-2"}`

	t.Run("ListLinkEvents/HTTP", func(t *testing.T) {
		code, body := doAs(t, s, opsToken, "GET", "/v1/links/parent%2F123/events?page_size=5&page_token=cursor-1")
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		assertJSON(t, body, pageJSON)
		if f, c, l := src.asked(); f != (tokens.EventFilter{UserID: "parent/123"}) || c != "cursor-1" || l != 5 {
			t.Errorf("asked ListEvents(%+v, %q, %d)", f, c, l)
		}
	})

	t.Run("ListLinkEvents/gRPC", func(t *testing.T) {
		resp, err := client.ListLinkEvents(as(t.Context(), opsToken), &brokerv1.ListLinkEventsRequest{UserId: "parent-123"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
		assertJSON(t, string(b), pageJSON)
		if f, c, l := src.asked(); f != (tokens.EventFilter{UserID: "parent-123"}) || c != "" || l != tokens.DefaultPageSize {
			t.Errorf("asked ListEvents(%+v, %q, %d)", f, c, l)
		}
	})

	t.Run("ListEvents/HTTP", func(t *testing.T) {
		code, body := doAs(t, s, opsToken, "GET", "/v1/events?type=link.relink_required&page_size=5000")
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		assertJSON(t, body, pageJSON)
		if f, _, l := src.asked(); f != (tokens.EventFilter{Type: tokens.EventRelinkRequired}) || l != tokens.MaxPageSize {
			t.Errorf("asked ListEvents(%+v, _, %d)", f, l)
		}
	})

	t.Run("ListEvents/gRPC", func(t *testing.T) {
		resp, err := client.ListEvents(as(t.Context(), opsToken), &brokerv1.ListEventsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetEvents()) != 1 || resp.GetEvents()[0].GetData().GetFields()["relinked"].GetBoolValue() != true {
			t.Errorf("events = %v", resp.GetEvents())
		}
		if f, _, _ := src.asked(); f != (tokens.EventFilter{}) {
			t.Errorf("asked ListEvents(%+v)", f)
		}
	})

	statsJSON := `{"links":{"LINKED":3,"RELINK_REQUIRED":0},
		"deliveries":{"PENDING":2,"DELIVERED":0,"FAILED":1,"SUPERSEDED":0},"webhooks":{"PENDING":4}}`
	t.Run("GetStats/HTTP", func(t *testing.T) {
		code, body := doAs(t, s, opsToken, "GET", "/v1/stats")
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		assertJSON(t, body, statsJSON)
	})

	t.Run("GetStatsOfSkill/HTTP", func(t *testing.T) {
		code, body := doAs(t, s, opsToken, "GET", "/v1/stats?skill_id=home")
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		assertJSON(t, body, `{"links":{"LINKED":0,"RELINK_REQUIRED":0},
		"deliveries":{"PENDING":2,"DELIVERED":0,"FAILED":1,"SUPERSEDED":0},"webhooks":{"PENDING":4}}`)
	})

	t.Run("GetStatsOfSkill/gRPC", func(t *testing.T) {
		stats, err := client.GetStats(as(t.Context(), opsToken), &brokerv1.GetStatsRequest{SkillId: "baby"})
		if err != nil {
			t.Fatal(err)
		}
		if got := stats.GetLinks()["LINKED"]; got != 3 {
			t.Errorf("LINKED = %d, want 3", got)
		}
	})

	t.Run("GetStats/gRPC", func(t *testing.T) {
		stats, err := client.GetStats(as(t.Context(), opsToken), &brokerv1.GetStatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got := stats.GetLinks()["LINKED"]; got != 3 {
			t.Errorf("LINKED = %d, want 3", got)
		}
	})

	for _, tt := range []struct {
		name, path string
		call       func(context.Context) error
		code       codes.Code
		status     int
	}{
		{"UnknownType", "/v1/events?type=link.exploded", func(ctx context.Context) error {
			_, err := client.ListEvents(ctx, &brokerv1.ListEventsRequest{Type: "link.exploded"})
			return err
		}, codes.InvalidArgument, http.StatusBadRequest},
		{"NegativePageSize", "/v1/events?page_size=-1", func(ctx context.Context) error {
			_, err := client.ListEvents(ctx, &brokerv1.ListEventsRequest{PageSize: -1})
			return err
		}, codes.InvalidArgument, http.StatusBadRequest},
		{"StatsUnknownSkill", "/v1/stats?skill_id=garden", func(ctx context.Context) error {
			_, err := client.GetStats(ctx, &brokerv1.GetStatsRequest{SkillId: "garden"})
			return err
		}, codes.InvalidArgument, http.StatusBadRequest},
		{"LinkEventsInvalid", "/v1/links/u/events?page_size=-1", func(ctx context.Context) error {
			_, err := client.ListLinkEvents(ctx, &brokerv1.ListLinkEventsRequest{})
			return err
		}, codes.InvalidArgument, http.StatusBadRequest},
	} {
		t.Run(tt.name+"/gRPC", func(t *testing.T) {
			if got := status.Code(tt.call(as(t.Context(), opsToken))); got != tt.code {
				t.Errorf("code = %v, want %v", got, tt.code)
			}
		})
		t.Run(tt.name+"/HTTP", func(t *testing.T) {
			if code, body := doAs(t, s, opsToken, "GET", tt.path); code != tt.status {
				t.Errorf("status = %d (%s), want %d", code, body, tt.status)
			}
		})
	}
}

// TestEventService_NoStore: a broker whose store keeps no events or counts
// answers UNIMPLEMENTED, 501.
func TestEventService_NoStore(t *testing.T) {
	s := open(t, server.Options{Authenticator: clientAuthn{}, Services: server.Services{Events: server.NewEventService(server.EventSources{})}})
	for _, path := range []string{"/v1/events", "/v1/links/u/events", "/v1/stats", "/v1/pending-deliveries"} {
		t.Run(path, func(t *testing.T) {
			if code, body := doAs(t, s, opsToken, "GET", path); code != http.StatusNotImplemented {
				t.Errorf("status = %d (%s), want 501", code, body)
			}
		})
	}
}

// memLinks is a hand-written tokens.Store of links put in directly; it keeps
// the events stored with deletions.
type memLinks struct {
	mu     sync.Mutex
	links  map[string]*tokens.Link
	events []tokens.Event
}

var _ tokens.Store = (*memLinks)(nil)

func newMemLinks(links ...*tokens.Link) *memLinks {
	m := &memLinks{links: map[string]*tokens.Link{}}
	for _, l := range links {
		m.links[l.UserID] = l
	}
	return m
}

func (m *memLinks) GetLink(_ context.Context, userID string) (*tokens.Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[userID]
	if !ok {
		return nil, tokens.ErrLinkNotFound
	}
	c := *l
	return &c, nil
}

func (m *memLinks) PutLink(context.Context, *tokens.Link, ...tokens.Event) error {
	return tokens.Errorf(tokens.EUNIMPLEMENTED, "memLinks: read only")
}

func (m *memLinks) DeleteLink(_ context.Context, userID string, events ...tokens.Event) error {
	if err := tokens.ValidateEvents(events); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.links[userID]; !ok {
		return tokens.ErrLinkNotFound
	}
	delete(m.links, userID)
	m.events = append(m.events, events...)
	return nil
}

func (m *memLinks) ListLinks(_ context.Context, cursor string, limit int) (tokens.LinkPage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.links {
		if id > cursor {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var page tokens.LinkPage
	for i, id := range ids {
		if i == tokens.PageSize(limit) {
			page.Next = ids[i-1]
			break
		}
		c := *m.links[id]
		page.Links = append(page.Links, &c)
	}
	return page, nil
}

func (m *memLinks) ClaimCode(context.Context, string, string, time.Time) (string, error) {
	return "", tokens.Errorf(tokens.EUNIMPLEMENTED, "memLinks: no claims")
}

func (m *memLinks) Ping(context.Context) error { return nil }

// deleted returns the events stored with deletions.
func (m *memLinks) deleted() []tokens.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events)
}

func TestLinkService_DeleteReason(t *testing.T) {
	store := newMemLinks(
		&tokens.Link{UserID: "u1", State: tokens.StateLinked},
		&tokens.Link{UserID: "u2", State: tokens.StateLinked},
		&tokens.Link{UserID: "u3", State: tokens.StateLinked},
		&tokens.Link{UserID: "u4", State: tokens.StateLinked},
	)
	s := open(t, server.Options{
		Authenticator: clientAuthn{},
		Services:      server.Services{Links: server.NewLinkService(mustServices(t, tokens.NewService(store, nil, nil)))},
	})
	links := brokerv1.NewLinkServiceClient(dial(t, s))

	for _, tt := range []struct {
		name, user, token, reason string
		http                      bool
		wantActor, wantReason     string
	}{
		{"EventsScope/HTTP", "u1", skillToken, "skill_disabled", true, "skill-backend", "skill_disabled"},
		{"EventsScope/gRPC", "u2", skillToken, "skill_disabled", false, "skill-backend", "skill_disabled"},
		{"AdminNoReason/HTTP", "u3", opsToken, "", true, "ops-console", "operator"},
		{"AdminNoReason/gRPC", "u4", opsToken, "", false, "ops-console", "operator"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.http {
				path := "/v1/links/" + tt.user
				if tt.reason != "" {
					path += "?reason=" + tt.reason
				}
				if code, body := doAs(t, s, tt.token, "DELETE", path); code != http.StatusOK {
					t.Fatalf("status = %d (%s)", code, body)
				}
			} else if _, err := links.DeleteLink(as(t.Context(), tt.token), &brokerv1.DeleteLinkRequest{UserId: tt.user, Reason: tt.reason}); err != nil {
				t.Fatal(err)
			}
			events := store.deleted()
			e := events[len(events)-1]
			if e.Type != tokens.EventDeleted || e.UserID != tt.user || e.Actor != tt.wantActor || e.Data["reason"] != tt.wantReason {
				t.Errorf("event = %+v, want link.deleted of %s by %s, reason %s", e, tt.user, tt.wantActor, tt.wantReason)
			}
		})
	}

	t.Run("TokensScopeRefused", func(t *testing.T) {
		if code, _ := doAs(t, s, tokensToken, "DELETE", "/v1/links/u1"); code != http.StatusForbidden {
			t.Errorf("status = %d, want 403", code)
		}
	})
}

func TestLinkService_ListByState(t *testing.T) {
	store := newMemLinks(
		&tokens.Link{UserID: "a", State: tokens.StateLinked},
		&tokens.Link{UserID: "b", State: tokens.StateRelinkRequired},
		&tokens.Link{UserID: "bb", State: tokens.StateLinked},
		&tokens.Link{UserID: "c", State: tokens.StateLinked},
		&tokens.Link{UserID: "d", State: tokens.StateRelinkRequired},
	)
	s := open(t, server.Options{
		Authenticator: clientAuthn{},
		Services:      server.Services{Links: server.NewLinkService(mustServices(t, tokens.NewService(store, nil, nil)))},
	})
	links := brokerv1.NewLinkServiceClient(dial(t, s))
	ids := func(ls []*brokerv1.Link) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.GetUserId())
		}
		return out
	}

	t.Run("HTTP", func(t *testing.T) {
		code, body := doAs(t, s, opsToken, "GET", "/v1/links?state=RELINK_REQUIRED")
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		var resp brokerv1.ListLinksResponse
		if err := protojson.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b", "d"}, ids(resp.GetLinks())); diff != "" {
			t.Errorf("links (-want +got):\n%s", diff)
		}
	})

	t.Run("gRPC", func(t *testing.T) {
		resp, err := links.ListLinks(as(t.Context(), opsToken), &brokerv1.ListLinksRequest{State: brokerv1.LinkState_LINKED, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a"}, ids(resp.GetLinks())); diff != "" || resp.GetNextPageToken() != "a" {
			t.Errorf("links (-want +got):\n%s; next %q", diff, resp.GetNextPageToken())
		}
	})

	t.Run("Prefix/HTTP", func(t *testing.T) {
		code, body := doAs(t, s, opsToken, "GET", "/v1/links?user_id_prefix=b")
		if code != http.StatusOK {
			t.Fatalf("status = %d (%s)", code, body)
		}
		var resp brokerv1.ListLinksResponse
		if err := protojson.Unmarshal([]byte(body), &resp); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"b", "bb"}, ids(resp.GetLinks())); diff != "" {
			t.Errorf("links (-want +got):\n%s", diff)
		}
	})

	t.Run("PrefixAndState/gRPC", func(t *testing.T) {
		resp, err := links.ListLinks(as(t.Context(), opsToken), &brokerv1.ListLinksRequest{State: brokerv1.LinkState_LINKED, UserIdPrefix: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"bb"}, ids(resp.GetLinks())); diff != "" {
			t.Errorf("links (-want +got):\n%s", diff)
		}
	})

	t.Run("UnknownState/HTTP", func(t *testing.T) {
		if code, body := doAs(t, s, opsToken, "GET", "/v1/links?state=BROKEN"); code != http.StatusBadRequest {
			t.Errorf("status = %d (%s), want 400", code, body)
		}
	})

	t.Run("UnknownState/gRPC", func(t *testing.T) {
		_, err := links.ListLinks(as(t.Context(), opsToken), &brokerv1.ListLinksRequest{State: 7})
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("code = %v, want InvalidArgument", got)
		}
	})
}

// TestEventService_Scopes: the audit trail needs broker:admin; broker:events
// may delete links and nothing else.
func TestEventService_Scopes(t *testing.T) {
	src := &fakeEvents{}
	s := open(t, server.Options{
		Authenticator: clientAuthn{},
		Services: server.Services{
			Events: server.NewEventService(server.EventSources{Events: src, Links: src, Reports: src, Webhooks: src}),
			Links:  failingLinks{},
		},
	})
	conn := dial(t, s)
	events, links := brokerv1.NewEventServiceClient(conn), brokerv1.NewLinkServiceClient(conn)
	for _, tt := range []struct {
		name, token, method, path string
		call                      func(context.Context) error
		code                      codes.Code
		status                    int
	}{
		{"EventsWithAdmin", opsToken, "GET", "/v1/events", func(ctx context.Context) error {
			_, err := events.ListEvents(ctx, &brokerv1.ListEventsRequest{})
			return err
		}, codes.OK, http.StatusOK},
		{"EventsWithEventsScope", skillToken, "GET", "/v1/events", func(ctx context.Context) error {
			_, err := events.ListEvents(ctx, &brokerv1.ListEventsRequest{})
			return err
		}, codes.PermissionDenied, http.StatusForbidden},
		{"LinkEventsWithTokens", tokensToken, "GET", "/v1/links/u/events", func(ctx context.Context) error {
			_, err := events.ListLinkEvents(ctx, &brokerv1.ListLinkEventsRequest{UserId: "u"})
			return err
		}, codes.PermissionDenied, http.StatusForbidden},
		{"StatsWithEventsScope", skillToken, "GET", "/v1/stats", func(ctx context.Context) error {
			_, err := events.GetStats(ctx, &brokerv1.GetStatsRequest{})
			return err
		}, codes.PermissionDenied, http.StatusForbidden},
		{"StatsWithAdmin", opsToken, "GET", "/v1/stats", func(ctx context.Context) error {
			_, err := events.GetStats(ctx, &brokerv1.GetStatsRequest{})
			return err
		}, codes.OK, http.StatusOK},
		// No pending deliveries to list: UNIMPLEMENTED means the call got past the check.
		{"PendingWithAdmin", opsToken, "GET", "/v1/pending-deliveries", func(ctx context.Context) error {
			_, err := events.ListPendingDeliveries(ctx, &brokerv1.ListPendingDeliveriesRequest{})
			return err
		}, codes.Unimplemented, http.StatusNotImplemented},
		{"PendingWithEventsScope", skillToken, "GET", "/v1/pending-deliveries", func(ctx context.Context) error {
			_, err := events.ListPendingDeliveries(ctx, &brokerv1.ListPendingDeliveriesRequest{})
			return err
		}, codes.PermissionDenied, http.StatusForbidden},
		// failingLinks has no DeleteLink: UNIMPLEMENTED means the call got past the check.
		{"DeleteWithEventsScope", skillToken, "DELETE", "/v1/links/u", func(ctx context.Context) error {
			_, err := links.DeleteLink(ctx, &brokerv1.DeleteLinkRequest{UserId: "u"})
			return err
		}, codes.Unimplemented, http.StatusNotImplemented},
		{"ListLinksWithEventsScope", skillToken, "GET", "/v1/links", func(ctx context.Context) error {
			_, err := links.ListLinks(ctx, &brokerv1.ListLinksRequest{})
			return err
		}, codes.PermissionDenied, http.StatusForbidden},
		{"RefreshWithEventsScope", skillToken, "POST", "/v1/links/u:refresh", func(ctx context.Context) error {
			_, err := links.RefreshLink(ctx, &brokerv1.RefreshLinkRequest{UserId: "u"})
			return err
		}, codes.PermissionDenied, http.StatusForbidden},
	} {
		t.Run(tt.name+"/gRPC", func(t *testing.T) {
			if got := status.Code(tt.call(as(t.Context(), tt.token))); got != tt.code {
				t.Errorf("code = %v, want %v", got, tt.code)
			}
		})
		t.Run(tt.name+"/HTTP", func(t *testing.T) {
			if code, body := doAs(t, s, tt.token, tt.method, tt.path); code != tt.status {
				t.Errorf("status = %d (%s), want %d", code, body, tt.status)
			}
		})
	}
}

// mustServices returns the token services of a broker of those skills.
func mustServices(t *testing.T, ss ...*tokens.Service) *tokens.Services {
	t.Helper()
	services, err := tokens.NewServices(ss...)
	if err != nil {
		t.Fatalf("NewServices error = %v", err)
	}
	return services
}

// trailEvents is an audit trail of events, newest first, paged by index: a
// cursor is the index of the page's first event.
type trailEvents struct {
	events []tokens.Event
	reads  int
}

func (f *trailEvents) ListEvents(_ context.Context, _ tokens.EventFilter, cursor string, limit int) (tokens.EventPage, error) {
	f.reads++
	from, _ := strconv.Atoi(cursor)
	to := min(from+limit, len(f.events))
	page := tokens.EventPage{Events: f.events[from:to]}
	if to < len(f.events) {
		page.Next = strconv.Itoa(to)
	}
	return page, nil
}

func (f *trailEvents) DeleteEventsBefore(context.Context, time.Time) (int, error) { return 0, nil }

// TestEventService_ListLinkEvents_Skill: a page of one skill's events is
// filled from as many pages of the user's trail as it takes, up to eight,
// and the next page starts after the last event read.
func TestEventService_ListLinkEvents_Skill(t *testing.T) {
	// Ten events: those at 0, 4, 5 and 9 are baby's, the others home's.
	var trail []tokens.Event
	for i := range 10 {
		e := sampleEvent
		e.ID, e.SkillID = fmt.Sprintf("evt_%d", i), "home"
		if i == 0 || i == 4 || i == 5 || i == 9 {
			e.SkillID = "baby"
		}
		trail = append(trail, e)
	}
	homeSvc := tokens.NewService(newMemLinks(), nil, nil)
	homeSvc.SkillID = "home"
	babySvc := tokens.NewService(newMemLinks(), nil, nil)
	babySvc.SkillID = "baby"
	for _, tc := range []struct {
		name      string
		pageSize  int32
		events    []tokens.Event // the trail; nil: trail
		wantPages [][]string     // the ids of each page, to the end
		wantReads int
	}{
		{"OneByOne", 1, nil, [][]string{{"evt_0"}, {"evt_4"}, {"evt_5"}, {"evt_9"}}, 10},
		{"Two", 2, nil, [][]string{{"evt_0", "evt_4"}, {"evt_5", "evt_9"}}, 8},
		{"All", 10, nil, [][]string{{"evt_0", "evt_4", "evt_5", "evt_9"}}, 1},
		{"ReadsBounded", 1, append(slices.Repeat([]tokens.Event{trail[1]}, 20), trail[0]), [][]string{{}, {}, {"evt_0"}}, 21},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &trailEvents{events: trail}
			if tc.events != nil {
				src.events = tc.events
			}
			s := open(t, server.Options{
				Authenticator: clientAuthn{},
				Services: server.Services{Events: server.NewEventService(server.EventSources{
					Events: src, Skills: mustServices(t, homeSvc, babySvc),
				})},
			})
			client := brokerv1.NewEventServiceClient(dial(t, s))
			var pages [][]string
			token := ""
			for range 10 {
				resp, err := client.ListLinkEvents(as(t.Context(), opsToken), &brokerv1.ListLinkEventsRequest{
					UserId: "parent-123", SkillId: "baby", PageSize: tc.pageSize, PageToken: token,
				})
				if err != nil {
					t.Fatal(err)
				}
				ids := []string{}
				for _, e := range resp.GetEvents() {
					ids = append(ids, e.GetId())
				}
				pages = append(pages, ids)
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
			if !reflect.DeepEqual(pages, tc.wantPages) || src.reads != tc.wantReads {
				t.Errorf("pages %q after %d reads of the trail, want %q after %d", pages, src.reads, tc.wantPages, tc.wantReads)
			}
		})
	}
}
