package reports_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
)

func TestDeliverer_NewestFirst(t *testing.T) {
	t.Run("SupersedesOlder", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			for _, id := range []string{"m1", "m2", "m3"} {
				h.submit(t, "u1", id)
			}
			h.start(t)
			synctest.Wait()

			assertSent(t, h.sender, "m3")
			assertState(t, h.report(t, "m3"), reports.StateDelivered)
			for _, id := range []string{"m1", "m2"} {
				r := h.report(t, id)
				assertState(t, r, reports.StateSuperseded)
				if r.Attempts != 0 || r.FinishedAt.IsZero() {
					t.Errorf("%s: attempts %d, finished at %v; want never sent, finished", id, r.Attempts, r.FinishedAt)
				}
			}
			advance(time.Minute)
			assertSent(t, h.sender, "m3")
			assertObserved(t, h.obs, observed{Accepted: 3, Delivered: 1, Superseded: 2})
		})
	})

	t.Run("AfterRetry", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			// Budget: one outbox read per poll and one per delivery, with room.
			const budget = 500
			ctx, cancel := context.WithCancel(t.Context())
			var spun atomic.Bool
			h.store.onPendingRead = func(n int64) {
				if n > budget {
					spun.Store(true)
					cancel()
				}
			}
			h.sender.setRespond(script(errThrottled))
			h.submit(t, "u1", "m1")
			h.submit(t, "u1", "m2")
			run(t, ctx, h.d)
			synctest.Wait()
			advance(errThrottled.After + h.d.PollInterval)

			if spun.Load() {
				t.Fatalf("the deliverer read the outbox more than %d times in %v of fake time: it spins", budget, errThrottled.After)
			}
			assertSent(t, h.sender, "m2", "m2")
			assertState(t, h.report(t, "m2"), reports.StateDelivered)
			assertState(t, h.report(t, "m1"), reports.StateSuperseded)
			assertObserved(t, h.obs, observed{Accepted: 2, Retried: 1, Delivered: 1, Superseded: 1})
		})
	})
}

func TestDeliverer_PerUserSerial(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		gate := h.sender.block()
		h.submit(t, "u1", "a1")
		h.submit(t, "u2", "b1")
		h.start(t)
		synctest.Wait()

		perUser, total, _, _ := h.sender.flight()
		if diff := cmp.Diff(map[string]int{"u1": 1, "u2": 1}, perUser); diff != "" || total != 2 {
			t.Errorf("sends in flight: %d, by user (-want +got):\n%s", total, diff)
		}
		h.submit(t, "u1", "a2") // u1 is busy: a2 waits for a1's send
		synctest.Wait()
		if perUser, _, _, _ := h.sender.flight(); perUser["u1"] != 1 {
			t.Errorf("u1 has %d sends in flight, want 1", perUser["u1"])
		}
		if got := len(h.sender.sends()); got != 2 {
			t.Errorf("%d sends, want 2", got)
		}

		close(gate)
		synctest.Wait()
		for _, id := range []string{"a1", "b1", "a2"} {
			assertState(t, h.report(t, id), reports.StateDelivered)
		}
		var u1 []string
		for _, s := range h.sender.sends() {
			if s.UserID == "u1" {
				u1 = append(u1, s.MessageID)
			}
		}
		if diff := cmp.Diff([]string{"a1", "a2"}, u1); diff != "" {
			t.Errorf("u1's sends differ (-want +got):\n%s", diff)
		}
		if _, _, maxUser, maxTotal := h.sender.flight(); maxUser != 1 || maxTotal != 2 {
			t.Errorf("at most %d sends of one user and %d in all were in flight, want 1 and 2", maxUser, maxTotal)
		}
		assertObserved(t, h.obs, observed{Accepted: 3, Delivered: 3})
	})
}

func TestDeliverer_Concurrency(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.d.Concurrency = 1
		gate := h.sender.block()
		h.submit(t, "u1", "a1")
		h.submit(t, "u2", "b1")
		h.start(t)
		synctest.Wait()
		if _, total, _, _ := h.sender.flight(); total != 1 {
			t.Errorf("%d sends in flight, want Concurrency's 1", total)
		}
		gate <- struct{}{}
		synctest.Wait()
		if _, total, _, _ := h.sender.flight(); total != 1 || len(h.sender.sends()) != 2 {
			t.Errorf("%d sends in flight of %d; want the second user's alone", total, len(h.sender.sends()))
		}
		close(gate)
		synctest.Wait()
		assertState(t, h.report(t, "a1"), reports.StateDelivered)
		assertState(t, h.report(t, "b1"), reports.StateDelivered)
		if _, _, _, maxTotal := h.sender.flight(); maxTotal != 1 {
			t.Errorf("at most %d sends were in flight, want 1", maxTotal)
		}
	})
}

// TestDeliverer_DeliveryClaim: the deliverer sends a user's reports only under
// the user's delivery claim in the store, gives it back after, and never sends
// a report older than the user's delivered mark.
func TestDeliverer_DeliveryClaim(t *testing.T) {
	t.Run("HeldByAnother", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			now := time.Now()
			if _, held, err := h.store.ClaimDelivery(t.Context(), "u1", "another instance", now, now.Add(time.Minute)); err != nil || !held {
				t.Fatalf("ClaimDelivery = %v, %v", held, err)
			}
			h.submit(t, "u1", "m1")
			h.submit(t, "u2", "m2")
			h.start(t)
			synctest.Wait()
			assertSent(t, h.sender, "m2")

			advance(time.Minute + h.d.PollInterval) // the other instance's claim runs out
			assertSent(t, h.sender, "m2", "m1")
			assertState(t, h.report(t, "m1"), reports.StateDelivered)
		})
	})

	t.Run("Released", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.firstAttempt(t)
			now := time.Now()
			if _, held, err := h.store.ClaimDelivery(t.Context(), "u1", "another instance", now, now.Add(time.Minute)); err != nil || !held {
				t.Errorf("ClaimDelivery after a delivery = %v, %v; want the claim given back", held, err)
			}
		})
	})

	t.Run("OlderThanDelivered", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			// Another instance delivered m2 and stopped before it superseded
			// m1, which its index still showed pending.
			h.submit(t, "u1", "m1")
			m2 := h.submit(t, "u1", "m2")
			m2.State, m2.FinishedAt, m2.DeliveredAt = reports.StateDelivered, time.Now(), time.Now()
			if err := h.store.PutReport(t.Context(), m2); err != nil {
				t.Fatal(err)
			}
			h.start(t)
			synctest.Wait()

			assertSent(t, h.sender)
			m1 := h.report(t, "m1")
			assertState(t, m1, reports.StateSuperseded)
			assertAttempts(t, m1, 0)
		})
	})
}
