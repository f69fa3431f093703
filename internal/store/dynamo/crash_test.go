package dynamo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// newCrashing returns a store on a new table of endpoint whose client is a
// crashingClient, not armed yet, and the table's name, for a store that
// restarts on it.
func newCrashing(t *testing.T, endpoint string) (*dynamo.Store, *crashingClient, string) {
	t.Helper()
	table := dynamotest.NewTable(t, endpoint)
	mustNew(t, endpoint, table, true)
	client := &crashingClient{Client: dynamotest.Client(endpoint)}
	store, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	return store, client, table
}

// crashingClient is the real client, except that once armed, the writes that
// crash picks (by their number since arming, from 1) fail as a process that
// died before sending them would: nothing is written.
type crashingClient struct {
	*dynamodb.Client
	mu     sync.Mutex
	armed  bool
	writes int
	crash  func(n int, op string) bool
}

var errCrashed = errors.New("crashed before the write")

func (c *crashingClient) arm(crash func(n int, op string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armed, c.writes, c.crash = true, 0, crash
}

func (c *crashingClient) crashes(op string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return false
	}
	c.writes++
	return c.crash(c.writes, op)
}

func (c *crashingClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if c.crashes("PutItem") {
		return nil, errCrashed
	}
	return c.Client.PutItem(ctx, in, opts...)
}

func (c *crashingClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.crashes("UpdateItem") {
		return nil, errCrashed
	}
	return c.Client.UpdateItem(ctx, in, opts...)
}

func (c *crashingClient) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if c.crashes("DeleteItem") {
		return nil, errCrashed
	}
	return c.Client.DeleteItem(ctx, in, opts...)
}

// TestStore_EventsCrash checks the order of the writes of a change and its
// events (see the package documentation): a store that dies between two of
// them, then a store started again on the table (its clock past the outbox
// grace), shows every event of a change that was written, once, and none of a
// change that was not.
func TestStore_EventsCrash(t *testing.T) {
	endpoint := dynamotest.Start(t)
	after := func(first int) func(int, string) bool { return func(n int, _ string) bool { return n > first } }
	only := func(k int) func(int, string) bool { return func(n int, _ string) bool { return n == k } }
	// newEvent returns a new event of s's skill to be sent as a webhook.
	newEvent := func(s *dynamo.Store, typ tokens.EventType, link *tokens.Link) tokens.Event {
		e := storetest.NewTestEvent(typ, link.UserID, time.Now())
		e.SkillID, e.Notify = s.SkillID(), true
		return e
	}
	relinkRequired := func(s *dynamo.Store, link *tokens.Link) tokens.Event {
		link.State = tokens.StateRelinkRequired
		return newEvent(s, tokens.EventRelinkRequired, link)
	}
	for _, tt := range []struct {
		name        string
		crash       func(n int, op string) bool
		change      func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error)
		wantChanged bool
	}{
		{"PutLink/ChangeNotWritten", after(0), func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error) {
			e := relinkRequired(s, link)
			return e, s.PutLink(t.Context(), link, e)
		}, false},
		{"PutLink/EventsNotWritten", after(1), func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error) {
			e := relinkRequired(s, link)
			return e, s.PutLink(t.Context(), link, e)
		}, true},
		// Writes: the link, the link counters, the event, the webhook, the
		// backlog counter, the end of the outbox.
		{"PutLink/OutboxNotEnded", only(6), func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error) {
			e := relinkRequired(s, link)
			return e, s.PutLink(t.Context(), link, e)
		}, true},
		{"DeleteLink/ChangeNotWritten", after(0), func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error) {
			e := newEvent(s, tokens.EventDeleted, link)
			return e, s.DeleteLink(t.Context(), link.UserID, e)
		}, false},
		{"DeleteLink/EventsNotWritten", after(1), func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error) {
			e := newEvent(s, tokens.EventDeleted, link)
			return e, s.DeleteLink(t.Context(), link.UserID, e)
		}, true},
		{"DeleteLink/ItemNotRemoved", func(_ int, op string) bool { return op == "DeleteItem" }, func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error) {
			e := newEvent(s, tokens.EventDeleted, link)
			return e, s.DeleteLink(t.Context(), link.UserID, e)
		}, true},
		{"PutLink/EventLost", only(3), func(s *dynamo.Store, link *tokens.Link) (tokens.Event, error) {
			e := relinkRequired(s, link)
			return e, s.PutLink(t.Context(), link, e)
		}, true},
	} {
		// The view of another skill keeps its links under other keys, and
		// its events under the user, as the default skill's.
		for _, skill := range []string{tokens.DefaultSkillID, "home"} {
			t.Run(tt.name+"/"+skill, func(t *testing.T) {
				store, client, table := newCrashing(t, endpoint)
				dying := store.ForSkill(skill)
				link := storetest.NewLink("u1")
				storetest.MustPut(t, dying, link)
				before := link.Version

				client.arm(tt.crash)
				ev, err := tt.change(dying, link)
				if changeErr := tokens.ErrorCode(err); (err == nil) != tt.wantChanged {
					t.Fatalf("change error = %v (code %q), want an error: %v", err, changeErr, !tt.wantChanged)
				}

				restarted := mustNew(t, endpoint, table, false).ForSkill(skill)
				dynamo.SetNow(restarted, func() time.Time { return time.Now().Add(dynamo.OutboxGrace + time.Second) })
				// A reader of the link finishes what the dying store left.
				got, err := restarted.GetLink(t.Context(), "u1")
				deleted := ev.Type == tokens.EventDeleted
				switch {
				case !tt.wantChanged && (err != nil || got.Version != before):
					t.Errorf("after a change that was not written: GetLink = %+v, %v; want the link as before", got, err)
				case tt.wantChanged && deleted && !errors.Is(err, tokens.ErrLinkNotFound):
					t.Errorf("after a deletion that was written: GetLink error = %v, want ErrLinkNotFound", err)
				case tt.wantChanged && !deleted && (err != nil || got.State != tokens.StateRelinkRequired):
					t.Errorf("after a change that was written: GetLink = %+v, %v; want it RELINK_REQUIRED", got, err)
				}
				for range 2 { // a second reader changes nothing
					_, _ = restarted.GetLink(t.Context(), "u1")
					_, _ = restarted.ListLinks(t.Context(), "", 0)
				}

				wantIDs := []string{}
				if tt.wantChanged {
					wantIDs = []string{ev.ID}
				}
				gotEvents := storetest.MustListEvents(t, restarted, tokens.EventFilter{UserID: "u1"})
				if len(gotEvents) != len(wantIDs) || (len(wantIDs) == 1 && gotEvents[0].ID != ev.ID) {
					t.Errorf("events after the restart = %v, want %v", gotEvents, wantIDs)
				}
				due, err := restarted.DueWebhooks(t.Context(), time.Now().Add(time.Hour), 0)
				if err != nil || len(due) != len(wantIDs) || (len(due) == 1 && due[0].Event.ID != ev.ID) {
					t.Errorf("DueWebhooks after the restart = %d webhooks, %v; want %v", len(due), err, wantIDs)
				}
				if tt.wantChanged {
					n, _, err := restarted.WebhookBacklog(t.Context())
					if err != nil || n != 1 {
						t.Errorf("WebhookBacklog after the restart = %d, %v; want 1", n, err)
					}
					w := due[0]
					w.State = events.StateDelivered
					if err := restarted.PutWebhook(t.Context(), w); err != nil {
						t.Fatal(err)
					}
					// A late flush of the same outbox does not send it again.
					_, _ = restarted.GetLink(t.Context(), "u1")
					if due, _ := restarted.DueWebhooks(t.Context(), time.Now().Add(time.Hour), 0); len(due) != 0 {
						t.Errorf("DueWebhooks after delivery = %d webhooks, want none", len(due))
					}
				}
				// The store goes on: the link can be changed again.
				if !deleted || !tt.wantChanged {
					cur := storetest.MustGet(t, restarted, "u1")
					cur.Region = "FE"
					storetest.MustPut(t, restarted, cur)
				}
				if got := gotEvents; len(got) == 1 && got[0].SkillID != ev.SkillID {
					t.Errorf("event's SkillID after the restart = %q, want %q", got[0].SkillID, ev.SkillID)
				}
			})
		}
	}
}

// TestStore_FinishedReportEventsCrash checks that the events of a report's
// last change, the one that ends it, are stored and their webhooks made due
// by the hourly sweep (DeleteFinishedReports with the retention's before)
// when the store that wrote the report died right after the write: nothing
// writes a finished report again, and the retention is days away. An outbox
// younger than the grace is left to its writer.
func TestStore_FinishedReportEventsCrash(t *testing.T) {
	endpoint := dynamotest.Start(t)
	for _, tt := range []struct {
		name       string
		state      reports.State
		event      tokens.EventType
		sweptAfter time.Duration // after the report's write
		wantEvent  bool
	}{
		{"Failed", reports.StateFailed, tokens.EventDeliveryFailed, time.Hour, true},
		{"Delivered", reports.StateDelivered, tokens.EventDelivered, time.Hour, true},
		{"Failed/LateInTheWindow", reports.StateFailed, tokens.EventDeliveryFailed, 5 * time.Hour, true},
		{"Failed/WithinTheGrace", reports.StateFailed, tokens.EventDeliveryFailed, dynamo.OutboxGrace / 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dying, client, table := newCrashing(t, endpoint)
			written := time.Now()
			dynamo.SetNow(dying, func() time.Time { return written })
			r := storetest.NewReport("m1", "u1", written)
			if _, _, err := dying.CreateReport(t.Context(), r); err != nil {
				t.Fatal(err)
			}
			e := tokens.NewEvent(tt.event, "u1", tokens.ActorBroker, written, map[string]any{"message_id": "m1"})
			e.Notify = true
			r.State, r.FinishedAt, r.Attempts = tt.state, written, 1
			// The report's write lands; the store dies before any write after it.
			put := false
			client.arm(func(_ int, op string) bool {
				if put {
					return true
				}
				put = op == "PutItem"
				return false
			})
			if err := dying.PutReport(t.Context(), r, e); err != nil {
				t.Fatalf("PutReport error = %v, want nil: its write landed", err)
			}

			restarted := mustNew(t, endpoint, table, false)
			now := written.Add(tt.sweptAfter)
			dynamo.SetNow(restarted, func() time.Time { return now })
			n, err := restarted.DeleteFinishedReports(t.Context(), now.Add(-reports.DefaultRetention))
			if err != nil || n != 0 {
				t.Fatalf("DeleteFinishedReports = %d, %v; want 0, nil", n, err)
			}

			var wantIDs []string
			if tt.wantEvent {
				wantIDs = []string{e.ID}
			}
			var gotIDs []string
			for _, ev := range storetest.MustListEvents(t, restarted, tokens.EventFilter{UserID: "u1"}) {
				gotIDs = append(gotIDs, ev.ID)
			}
			if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
				t.Errorf("events after the sweep (-want +got):\n%s", diff)
			}
			due, err := restarted.DueWebhooks(t.Context(), now.Add(time.Hour), 0)
			if err != nil {
				t.Fatalf("DueWebhooks error = %v", err)
			}
			var dueIDs []string
			for _, w := range due {
				dueIDs = append(dueIDs, w.Event.ID)
			}
			if diff := cmp.Diff(wantIDs, dueIDs); diff != "" {
				t.Errorf("due webhooks after the sweep (-want +got):\n%s", diff)
			}
			got, err := restarted.GetReport(t.Context(), "m1")
			if err != nil || got.State != tt.state {
				t.Errorf("GetReport after the sweep = %+v, %v; want it %s, kept", got, err, tt.state)
			}
		})
	}
}
