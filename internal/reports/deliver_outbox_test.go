package reports_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
)

func TestDeliverer_Retention(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.d.Retention = 2 * time.Hour
		h.d.PollInterval = time.Minute
		h.sender.setRespond(func(_ int, r *reports.Report) error {
			switch r.UserID {
			case "u2":
				return errServer
			case "u3":
				return errRefusal
			}
			return nil
		})
		h.submit(t, "u1", "delivered")
		h.submit(t, "u2", "pending")
		h.submit(t, "u3", "failed")
		h.start(t)
		synctest.Wait()
		assertState(t, h.report(t, "delivered"), reports.StateDelivered)
		assertState(t, h.report(t, "failed"), reports.StateFailed)

		advance(90 * time.Minute)
		for _, id := range []string{"delivered", "pending", "failed"} {
			h.report(t, id) // all kept
		}
		advance(40 * time.Minute)
		for _, id := range []string{"delivered", "failed"} {
			if _, err := h.store.GetReport(t.Context(), id); !errors.Is(err, reports.ErrReportNotFound) {
				t.Errorf("%s report %v after retention; want it removed", id, err)
			}
		}
		assertState(t, h.report(t, "pending"), reports.StatePending)
	})
}

// TestDeliverer_TwoInstances shares the outbox between two deliverers: while
// one sends, the other keeps off.
func TestDeliverer_TwoInstances(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		gate := h.sender.block()
		other := newFakeSender()
		otherGate := other.block()
		_, d2 := newDeliverer(h.store, h.tokens, other, h.obs)
		h.submit(t, "u1", "m1")
		h.start(t)
		run(t, t.Context(), d2)
		synctest.Wait()
		if got, want := len(h.sender.sends())+len(other.sends()), 1; got != want {
			t.Fatalf("%d sends of m1 by the two instances, want %d", got, want)
		}
		close(gate)
		close(otherGate)
		synctest.Wait()
		advance(time.Hour)
		r := h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		if got, want := len(h.sender.sends())+len(other.sends()), 1; got != want {
			t.Errorf("%d sends of m1 by the two instances, want %d", got, want)
		}
		assertAttempts(t, r, 1)
		assertObserved(t, h.obs, observed{Accepted: 1, Delivered: 1})
	})
}

// TestDeliverer_Restart stops a deliverer mid-send and starts a new one, as a
// new process, over the same outbox.
func TestDeliverer_Restart(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		begin := time.Now()
		// The first process stops while it sends u1's m1; its attempt holds
		// m1 for a while, then m1 is due again.
		h.sender.block()
		h.submit(t, "u1", "m1")
		stop := run(t, t.Context(), h.d)
		synctest.Wait()
		assertSent(t, h.sender, "m1")
		stop()
		m1 := h.report(t, "m1")
		assertState(t, m1, reports.StatePending)
		if !m1.NextAttemptAt.After(begin) {
			t.Errorf("interrupted m1 is due at %v, want it held beyond %v", m1.NextAttemptAt, begin)
		}
		// It had also accepted u3's m0, never attempted, and left u2's m2
		// waiting for its fourth attempt.
		h.submit(t, "u3", "m0")
		m2 := storetest.NewReport("m2", "u2", begin.Add(-time.Minute))
		m2.Attempts, m2.LastError, m2.NextAttemptAt = 3, errServer.Error(), begin.Add(10*time.Second)
		if _, created, err := h.store.CreateReport(t.Context(), m2); err != nil || !created {
			t.Fatalf("CreateReport(m2): created %v, err %v", created, err)
		}

		// A new process over the same store.
		sender, obs := newFakeSender(), &fakeObserver{}
		_, d := newDeliverer(h.store, h.tokens, sender, obs)
		run(t, t.Context(), d)
		synctest.Wait()
		assertSent(t, sender, "m0")
		assertState(t, h.report(t, "m0"), reports.StateDelivered)
		assertState(t, h.report(t, "m2"), reports.StatePending)

		advance(10*time.Second + d.PollInterval)
		assertSent(t, sender, "m0", "m2")
		r := h.report(t, "m2")
		assertState(t, r, reports.StateDelivered)
		assertAttempts(t, r, 4)

		advance(time.Until(m1.NextAttemptAt) + d.PollInterval)
		assertSent(t, sender, "m0", "m2", "m1")
		assertState(t, h.report(t, "m1"), reports.StateDelivered)
		assertObserved(t, obs, observed{Delivered: 3})
	})
}
