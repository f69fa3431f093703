package reports_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestDeliverer_FairAcrossUsers: user a has a backlog of pending reports, more
// than one page of the outbox (tokens.MaxPageSize), and the Alexa API fails
// every send of a's (5xx). Reports of other users, submitted
// while a keeps failing, are delivered at once: a's backlog and failures delay
// only a.
func TestDeliverer_FairAcrossUsers(t *testing.T) {
	const backlog = tokens.MaxPageSize + 500
	// wait is the most a report of another user may wait for delivery.
	const wait = time.Second
	// horizon is how long the test watches, in fake time.
	const horizon = 10 * time.Minute
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.tokens.link("a", "")
		for i := range backlog {
			h.submit(t, "a", fmt.Sprintf("a-%04d", i))
		}
		h.sender.setRespond(func(_ int, r *reports.Report) error {
			if r.UserID == "a" {
				return errServer
			}
			return nil
		})
		h.start(t)
		advance(30 * time.Second) // a has failed a few times by now

		submitted := time.Now()
		others := map[string]string{"u1": "o1", "u2": "o2", "u3": "o3"}
		for user, id := range others {
			h.submit(t, user, id)
		}
		synctest.Wait()
		took := map[string]time.Duration{}
		for time.Since(submitted) < horizon && len(took) < len(others) {
			for _, id := range others {
				if _, ok := took[id]; !ok && h.report(t, id).State == reports.StateDelivered {
					took[id] = time.Since(submitted)
				}
			}
			advance(time.Second)
		}
		for _, id := range others {
			d, ok := took[id]
			switch {
			case !ok:
				t.Errorf("report %s of another user not delivered %v after it was submitted, while user a fails", id, horizon)
			case d > wait:
				t.Errorf("report %s of another user delivered %v after it was submitted, want within %v", id, d, wait)
			default:
				t.Logf("report %s of another user delivered %v after it was submitted", id, d)
			}
		}
		if a := h.report(t, fmt.Sprintf("a-%04d", backlog-1)); a.State != reports.StatePending || a.Attempts < 2 {
			t.Errorf("a's newest report is %v after %d attempts; want still PENDING, retried", a.State, a.Attempts)
		}
	})
}
