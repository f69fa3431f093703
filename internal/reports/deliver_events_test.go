package reports_test

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// storedEvents returns the events stored with reports, oldest first.
func (s *memReports) storedEvents() []tokens.Event {
	return s.Events()
}

// eventCounter counts the events it is told of, by type.
type eventCounter struct {
	mu     sync.Mutex
	counts map[tokens.EventType]int
}

var _ tokens.EventObserver = (*eventCounter)(nil)

func (o *eventCounter) EventStored(t tokens.EventType, _ string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[tokens.EventType]int{}
	}
	o.counts[t]++
}

// assertDeliveryEvents checks the events stored with h's reports against
// want, ignoring ids; each must have occurred when its report finished.
func assertDeliveryEvents(tb testing.TB, h *deliverHarness, want ...tokens.Event) {
	tb.Helper()
	got := h.store.storedEvents()
	for _, e := range got {
		if err := e.Validate(); err != nil {
			tb.Errorf("event %+v: %v", e, err)
		}
		if r := h.report(tb, e.Data["message_id"].(string)); !e.OccurredAt.Equal(r.FinishedAt) {
			tb.Errorf("event %s occurred at %v, its report finished at %v", e.Type, e.OccurredAt, r.FinishedAt)
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(tokens.Event{}, "ID", "OccurredAt"), cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("events (-want +got):\n%s", diff)
	}
}

// deliveryEvent is an expected event of u1's report messageID.
func deliveryEvent(typ tokens.EventType, messageID, lastError string) tokens.Event {
	data := map[string]any{"message_id": messageID, "kind": "profile_report"}
	if typ == tokens.EventDeliveryFailed {
		data["last_error"] = lastError
	}
	return tokens.Event{Type: typ, UserID: "u1", SkillID: tokens.DefaultSkillID, Actor: tokens.ActorBroker, Data: data}
}

func TestDeliverer_Events(t *testing.T) {
	t.Run("Delivered", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			assertState(t, h.firstAttempt(t), reports.StateDelivered)
			assertDeliveryEvents(t, h, deliveryEvent(tokens.EventDelivered, "m1", ""))
		})
	})

	t.Run("FailedPermissionWithdrawn", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(script(errWithdrawn))
			assertState(t, h.firstAttempt(t), reports.StateFailed)
			assertDeliveryEvents(t, h, deliveryEvent(tokens.EventDeliveryFailed, "m1", reports.ErrPermissionWithdrawn.Message))
		})
	})

	t.Run("FailedAtDeadline", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			// The last wait before the deadline is at most MaxBackoff and half
			// again (jitter): advancing Deadline plus that always passes it.
			h.d.Deadline = time.Minute
			h.d.MinBackoff, h.d.MaxBackoff = time.Second, 16*time.Second
			h.sender.setRespond(always(errServer))
			h.submit(t, "u1", "m1")
			h.start(t)
			advance(h.d.Deadline + 2*h.d.MaxBackoff)
			r := h.report(t, "m1")
			assertState(t, r, reports.StateFailed)
			if !strings.Contains(r.LastError, "deadline") {
				t.Fatalf("LastError = %q, want the deadline", r.LastError)
			}
			assertDeliveryEvents(t, h, deliveryEvent(tokens.EventDeliveryFailed, "m1", r.LastError))
		})
	})

	t.Run("NoneForRetriesOrSuperseded", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(script(errServer))
			h.submit(t, "u1", "m1")
			h.submit(t, "u1", "m2")
			h.start(t)
			synctest.Wait()
			assertDeliveryEvents(t, h) // m2 will be retried: nothing yet
			advance(time.Minute)
			assertState(t, h.report(t, "m1"), reports.StateSuperseded)
			assertDeliveryEvents(t, h, deliveryEvent(tokens.EventDelivered, "m2", ""))
		})
	})

	t.Run("NotifyAndObserve", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			counter := &eventCounter{}
			h.svc.Notify = tokens.NewNotifySet([]tokens.EventType{tokens.EventDeliveryFailed})
			h.svc.EventObserver = counter
			h.sender.setRespond(script(nil, errWithdrawn))
			h.submit(t, "u1", "m1")
			h.submit(t, "u2", "m2")
			h.start(t)
			synctest.Wait()
			notified := map[tokens.EventType]bool{}
			for _, e := range h.store.storedEvents() {
				notified[e.Type] = e.Notify
			}
			want := map[tokens.EventType]bool{tokens.EventDelivered: false, tokens.EventDeliveryFailed: true}
			if diff := cmp.Diff(want, notified); diff != "" {
				t.Errorf("notify by type (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[tokens.EventType]int{tokens.EventDelivered: 1, tokens.EventDeliveryFailed: 1}, counter.counts); diff != "" {
				t.Errorf("observed (-want +got):\n%s", diff)
			}
		})
	})
}
