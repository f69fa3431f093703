package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// EventStore is what RunEvents checks: a tokens.Store that keeps the events of
// its changes (tokens.EventStore).
type EventStore interface {
	tokens.Store
	tokens.EventStore
}

// ReportEventStore is what RunReportEvents checks: a reports.Store that keeps
// the events of its changes.
type ReportEventStore interface {
	reports.Store
	tokens.EventStore
}

// RunEvents runs the conformance suite of the audit trail (tokens.EventStore,
// and the events that tokens.Store.PutLink and DeleteLink take) against the
// stores that open returns, new and empty for each subtest.
//
// Beyond the doc comments of the ports, the suite pins down:
//
//   - Events round-trip field by field (Data of strings and booleans, times
//     to the nanosecond as instants, Notify included).
//   - A change that fails (a version conflict, a link not found, an event that
//     ValidateEvents refuses) stores none of its events, and an event that is
//     refused stores no change.
//   - Events of the same instant are listed by ID, highest first; pages
//     follow each other without gaps or repeats, whatever the page size.
//   - DeleteEventsBefore keeps events at before and after, and leaves the
//     links alone.
//   - A context that has ended is an EUNAVAILABLE error.
func RunEvents(t *testing.T, open func(t *testing.T) EventStore) {
	t.Helper()
	t.Run("StoredWithPutLink", func(t *testing.T) {
		s := open(t)
		link := NewLink("u1")
		e1 := NewTestEvent(tokens.EventLinked, "u1", eventT0)
		e1.Data = map[string]any{"region": "EU", "relinked": false}
		e1.Notify = true
		if err := s.PutLink(t.Context(), link, e1); err != nil {
			t.Fatalf("PutLink with an event: %v", err)
		}
		e2 := NewTestEvent(tokens.EventRefreshed, "u1", eventT0.Add(time.Second))
		e2.SkillID, e2.Actor = "skill-2", "client-7"
		e2.Data = map[string]any{"trigger": "caller", "access_token_expires_at": "2026-12-01T11:00:00Z"}
		e3 := NewTestEvent(tokens.EventRelinkRequired, "u1", eventT0.Add(2*time.Second))
		link.State = tokens.StateRelinkRequired
		if err := s.PutLink(t.Context(), link, e2, e3); err != nil {
			t.Fatalf("PutLink with two events: %v", err)
		}
		assertEvents(t, s, tokens.EventFilter{UserID: "u1"}, e3, e2, e1)
		assertEvents(t, s, tokens.EventFilter{}, e3, e2, e1)
		if got := MustGet(t, s, "u1"); got.State != tokens.StateRelinkRequired {
			t.Errorf("link state = %v, want RELINK_REQUIRED", got.State)
		}
	})

	t.Run("StoredWithDeleteLink", func(t *testing.T) {
		s := open(t)
		linked := NewTestEvent(tokens.EventLinked, "u1", eventT0)
		if err := s.PutLink(t.Context(), NewLink("u1"), linked); err != nil {
			t.Fatal(err)
		}
		deleted := NewTestEvent(tokens.EventDeleted, "u1", eventT0.Add(time.Second))
		deleted.Data = map[string]any{"reason": "skill_disabled"}
		if err := s.DeleteLink(t.Context(), "u1", deleted); err != nil {
			t.Fatalf("DeleteLink with an event: %v", err)
		}
		assertNotFound(t, s, "u1")
		assertEvents(t, s, tokens.EventFilter{UserID: "u1"}, deleted, linked)
	})

	t.Run("NoEventsWithoutTheChange", func(t *testing.T) {
		s := open(t)
		link := NewLink("u1")
		MustPut(t, s, link)
		stale := clone(link)
		MustPut(t, s, link)
		ev := NewTestEvent(tokens.EventRefreshed, "u1", eventT0)
		if err := s.PutLink(t.Context(), stale, ev); !errors.Is(err, tokens.ErrVersionConflict) {
			t.Errorf("PutLink(stale) with an event: error = %v, want ErrVersionConflict", err)
		}
		if err := s.PutLink(t.Context(), NewLink("u1"), ev); !errors.Is(err, tokens.ErrVersionConflict) {
			t.Errorf("PutLink(create over a link) with an event: error = %v, want ErrVersionConflict", err)
		}
		if err := s.DeleteLink(t.Context(), "nobody", NewTestEvent(tokens.EventDeleted, "nobody", eventT0)); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("DeleteLink(missing) with an event: error = %v, want ErrLinkNotFound", err)
		}
		assertEvents(t, s, tokens.EventFilter{})
	})

	t.Run("InvalidEvent", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			change func(e *tokens.Event)
		}{
			{"NoID", func(e *tokens.Event) { e.ID = "" }},
			{"NoTime", func(e *tokens.Event) { e.OccurredAt = time.Time{} }},
			{"NoUser", func(e *tokens.Event) { e.UserID = "" }},
			{"NoActor", func(e *tokens.Event) { e.Actor = "" }},
			{"UnknownType", func(e *tokens.Event) { e.Type = "link.exploded" }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				good := NewTestEvent(tokens.EventLinked, "u1", eventT0)
				bad := NewTestEvent(tokens.EventLinked, "u1", eventT0)
				tt.change(&bad)
				link := NewLink("u1")
				err := s.PutLink(t.Context(), link, good, bad)
				assertRule(t, err, tokens.ValidateEvents([]tokens.Event{bad}))
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("PutLink error code = %q, want %q", got, want)
				}
				if link.Version != 0 {
					t.Errorf("link.Version = %d after a refused PutLink, want 0", link.Version)
				}
				assertNotFound(t, s, "u1")
				MustPut(t, s, link)
				err = s.DeleteLink(t.Context(), "u1", bad)
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("DeleteLink error code = %q, want %q", got, want)
				}
				MustGet(t, s, "u1")
				assertEvents(t, s, tokens.EventFilter{})
			})
		}
	})

	t.Run("Filters", func(t *testing.T) {
		s := open(t)
		// User ids that a careless key design confuses: one the prefix of
		// another, separators, a zero byte.
		users := []string{"a", "ab", "a#b", "a\x00b", `a\`}
		var all []tokens.Event
		for i, u := range users {
			at := eventT0.Add(time.Duration(i) * time.Minute)
			e1 := NewTestEvent(tokens.EventLinked, u, at)
			e2 := NewTestEvent(tokens.EventRelinkRequired, u, at.Add(time.Second))
			if err := s.PutLink(t.Context(), NewLink(u), e1, e2); err != nil {
				t.Fatalf("PutLink(%q): %v", u, err)
			}
			all = append(all, e1, e2)
		}
		newestFirst := func(keep func(e tokens.Event) bool) []tokens.Event {
			var out []tokens.Event
			for i := len(all) - 1; i >= 0; i-- {
				if keep(all[i]) {
					out = append(out, all[i])
				}
			}
			return out
		}
		for _, u := range users {
			assertEvents(t, s, tokens.EventFilter{UserID: u}, newestFirst(func(e tokens.Event) bool { return e.UserID == u })...)
		}
		for _, typ := range tokens.EventTypes {
			assertEvents(t, s, tokens.EventFilter{Type: typ}, newestFirst(func(e tokens.Event) bool { return e.Type == typ })...)
		}
		assertEvents(t, s, tokens.EventFilter{UserID: "ab", Type: tokens.EventLinked}, newestFirst(func(e tokens.Event) bool {
			return e.UserID == "ab" && e.Type == tokens.EventLinked
		})...)
		assertEvents(t, s, tokens.EventFilter{UserID: "nobody"})
		assertEvents(t, s, tokens.EventFilter{}, newestFirst(func(tokens.Event) bool { return true })...)
	})

	t.Run("Paging", func(t *testing.T) {
		s := open(t)
		link := NewLink("u1")
		MustPut(t, s, link)
		var want []tokens.Event
		for i := range 7 {
			// Two events share each instant but the last.
			e := NewTestEvent(tokens.EventTypes[i%len(tokens.EventTypes)], "u1", eventT0.Add(time.Duration(i/2)*time.Second))
			e.ID = fmt.Sprintf("evt_%02d", i)
			if err := s.PutLink(t.Context(), link, e); err != nil {
				t.Fatal(err)
			}
			want = append([]tokens.Event{e}, want...)
		}
		for _, filter := range []tokens.EventFilter{{}, {UserID: "u1"}} {
			for _, size := range []int{1, 2, 3, 7, 8} {
				t.Run(fmt.Sprintf("%+v/%d", filter, size), func(t *testing.T) {
					var got []tokens.Event
					cursor := ""
					for pages := 0; ; pages++ {
						if pages > len(want) {
							t.Fatalf("more than %d pages", pages)
						}
						page, err := s.ListEvents(t.Context(), filter, cursor, size)
						if err != nil {
							t.Fatalf("ListEvents(cursor %q): %v", cursor, err)
						}
						if len(page.Events) > size {
							t.Fatalf("page of %d events, want at most %d", len(page.Events), size)
						}
						got = append(got, page.Events...)
						if page.Next == "" {
							break
						}
						cursor = page.Next
					}
					if diff := cmp.Diff(eventIDs(want), eventIDs(got)); diff != "" {
						t.Errorf("events over all pages (-want +got):\n%s", diff)
					}
				})
			}
		}
		page, err := s.ListEvents(t.Context(), tokens.EventFilter{Type: tokens.EventLinked}, "", 1)
		if err != nil || len(page.Events) != 1 || page.Events[0].ID != "evt_06" || page.Next == "" {
			t.Fatalf("ListEvents(type linked, 1) = %v, %q, %v; want evt_06 and a next page", eventIDs(page.Events), page.Next, err)
		}
		page, err = s.ListEvents(t.Context(), tokens.EventFilter{Type: tokens.EventLinked}, page.Next, 1)
		if err != nil || len(page.Events) != 1 || page.Events[0].ID != "evt_00" {
			t.Fatalf("second page of type linked = %v, %v; want evt_00", eventIDs(page.Events), err)
		}
	})

	t.Run("BadArguments", func(t *testing.T) {
		s := open(t)
		for _, tt := range []struct {
			name   string
			filter tokens.EventFilter
			cursor string
		}{
			{"UnknownType", tokens.EventFilter{Type: "link.exploded"}, ""},
			{"ForeignCursor", tokens.EventFilter{}, "not a cursor!"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.ListEvents(t.Context(), tt.filter, tt.cursor, 10)
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("ListEvents error = %v (code %q), want code %q", err, got, want)
				}
			})
		}
	})

	t.Run("DeleteEventsBefore", func(t *testing.T) {
		s := open(t)
		link := NewLink("u1")
		MustPut(t, s, link)
		var evs []tokens.Event
		for i := range 5 {
			e := NewTestEvent(tokens.EventRefreshed, fmt.Sprint("u", i%2), eventT0.Add(time.Duration(i)*time.Hour))
			evs = append(evs, e)
		}
		if err := s.PutLink(t.Context(), link, evs...); err != nil {
			t.Fatal(err)
		}
		n, err := s.DeleteEventsBefore(t.Context(), eventT0.Add(2*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("DeleteEventsBefore = %d, %v; want 2, nil", n, err)
		}
		assertEvents(t, s, tokens.EventFilter{}, evs[4], evs[3], evs[2])
		assertEvents(t, s, tokens.EventFilter{UserID: "u0"}, evs[4], evs[2])
		assertEvents(t, s, tokens.EventFilter{Type: tokens.EventRefreshed}, evs[4], evs[3], evs[2])
		if n, err := s.DeleteEventsBefore(t.Context(), eventT0); err != nil || n != 0 {
			t.Errorf("DeleteEventsBefore(nothing older) = %d, %v; want 0, nil", n, err)
		}
		MustGet(t, s, "u1")
	})

	t.Run("ContextEnded", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.ListEvents(ctx, tokens.EventFilter{}, "", 10); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("ListEvents(ended context) error = %v, want EUNAVAILABLE", err)
		}
		if _, err := s.DeleteEventsBefore(ctx, eventT0); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("DeleteEventsBefore(ended context) error = %v, want EUNAVAILABLE", err)
		}
		if err := s.PutLink(ctx, NewLink("u1"), NewTestEvent(tokens.EventLinked, "u1", eventT0)); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("PutLink(ended context) error = %v, want EUNAVAILABLE", err)
		}
		assertEvents(t, s, tokens.EventFilter{})
	})
}

// RunReportEvents runs the conformance suite of the events that
// reports.Store.PutReport takes against the stores that open returns, new and
// empty for each subtest: they are stored with the change or not at all, as
// RunEvents checks for links; a store that is also an events.Store creates
// the webhooks of events with Notify set.
func RunReportEvents(t *testing.T, open func(t *testing.T) ReportEventStore) {
	t.Helper()
	t.Run("StoredWithPutReport", func(t *testing.T) {
		s := open(t)
		r := NewReport("m1", "u1", reportT0)
		mustCreate(t, s, r)
		r.State, r.DeliveredAt, r.FinishedAt = reports.StateDelivered, reportT0.Add(time.Second), reportT0.Add(time.Second)
		ev := NewTestEvent(tokens.EventDelivered, "u1", reportT0.Add(time.Second))
		ev.Data = map[string]any{"message_id": "m1", "kind": "profile_report"}
		ev.Notify = true
		if err := s.PutReport(t.Context(), r, ev); err != nil {
			t.Fatalf("PutReport with an event: %v", err)
		}
		assertStoredReport(t, s, r)
		assertEvents(t, s, tokens.EventFilter{UserID: "u1"}, ev)
		if hooks, ok := s.(events.Store); ok {
			due, err := hooks.DueWebhooks(t.Context(), reportT0.Add(time.Hour), 0)
			if err != nil || len(due) != 1 || due[0].Event.ID != ev.ID || due[0].State != events.StatePending {
				t.Errorf("DueWebhooks = %v, %v; want the event's webhook, PENDING", webhookIDs(due), err)
			}
		}
	})

	t.Run("NoEventsWithoutTheChange", func(t *testing.T) {
		s := open(t)
		r := NewReport("m1", "u1", reportT0)
		mustCreate(t, s, r)
		stale := *r
		r.Attempts = 1
		mustPutReport(t, s, r)
		stale.State, stale.FinishedAt = reports.StateFailed, reportT0
		if err := s.PutReport(t.Context(), &stale, NewTestEvent(tokens.EventDeliveryFailed, "u1", reportT0)); !errors.Is(err, reports.ErrVersionConflict) {
			t.Errorf("PutReport(stale) error = %v, want ErrVersionConflict", err)
		}
		gone := NewReport("m2", "u1", reportT0)
		gone.Version = 1
		if err := s.PutReport(t.Context(), gone, NewTestEvent(tokens.EventDeliveryFailed, "u1", reportT0)); !errors.Is(err, reports.ErrReportNotFound) {
			t.Errorf("PutReport(missing) error = %v, want ErrReportNotFound", err)
		}
		bad := NewTestEvent(tokens.EventDelivered, "u1", reportT0)
		bad.Actor = ""
		version := r.Version
		r.State = reports.StateFailed
		if err := s.PutReport(t.Context(), r, bad); tokens.ErrorCode(err) != tokens.EINVALID {
			t.Errorf("PutReport with an invalid event: error = %v, want EINVALID", err)
		}
		if r.Version != version {
			t.Errorf("r.Version = %d after a refused PutReport, want %d", r.Version, version)
		}
		if got := mustGetReport(t, s, "m1"); got.State != reports.StatePending {
			t.Errorf("stored state = %v after a refused PutReport, want PENDING", got.State)
		}
		assertEvents(t, s, tokens.EventFilter{})
	})
}

// eventT0 is when the suite's events occur: nanoseconds set, so that a store
// that rounds times fails.
var eventT0 = time.Date(2026, 12, 1, 10, 0, 0, 987654321, time.UTC)

// NewTestEvent returns a valid event of typ for userID at at, with a new ID,
// the actor "broker" and a reason in its data; Notify is not set.
func NewTestEvent(typ tokens.EventType, userID string, at time.Time) tokens.Event {
	return tokens.NewEvent(typ, userID, tokens.ActorBroker, at, map[string]any{"reason": "invalid_grant"})
}

// MustListEvents returns every event that matches filter, newest first, over
// all pages, and fails the test on error.
func MustListEvents(tb testing.TB, s tokens.EventStore, filter tokens.EventFilter) []tokens.Event {
	tb.Helper()
	var out []tokens.Event
	cursor := ""
	for range 1000 {
		page, err := s.ListEvents(tb.Context(), filter, cursor, 0)
		if err != nil {
			tb.Fatalf("ListEvents(%+v, %q) error = %v", filter, cursor, err)
		}
		out = append(out, page.Events...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
	tb.Fatalf("ListEvents(%+v): too many pages", filter)
	return nil
}

// assertEvents fails the test unless the events that match filter are want,
// in order, field by field.
func assertEvents(tb testing.TB, s tokens.EventStore, filter tokens.EventFilter, want ...tokens.Event) {
	tb.Helper()
	got := MustListEvents(tb, s, filter)
	if want == nil {
		want = []tokens.Event{}
	}
	if got == nil {
		got = []tokens.Event{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("ListEvents(%+v) (-want +got):\n%s", filter, diff)
	}
}

func eventIDs(evs []tokens.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}
