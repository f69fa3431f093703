package reports_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestDeliverer_Throttled(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errThrottled))
		begin := time.Now()
		r := h.firstAttempt(t)
		assertState(t, r, reports.StatePending)
		if got, want := r.NextAttemptAt.Sub(begin), errThrottled.After; got != want {
			t.Errorf("next attempt after %v, want Retry-After's %v", got, want)
		}
		if !strings.Contains(r.LastError, "429") {
			t.Errorf("LastError = %q, want it to say 429", r.LastError)
		}
		advance(errThrottled.After - time.Millisecond)
		assertSent(t, h.sender, "m1")
		advance(h.d.PollInterval)
		assertSent(t, h.sender, "m1", "m1")
		r = h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		assertAttempts(t, r, 2)
		if sends := h.sender.sends(); sends[1].At.Sub(sends[0].At) < errThrottled.After {
			t.Errorf("retried after %v, want at least %v", sends[1].At.Sub(sends[0].At), errThrottled.After)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1, Delivered: 1})
		if got := h.obs.delivered(); len(got) != 1 || got[0] != r.DeliveredAt.Sub(r.SubmittedAt) {
			t.Errorf("Delivered() durations = %v, want [%v]", got, r.DeliveredAt.Sub(r.SubmittedAt))
		}
	})
}

func TestDeliverer_ServerErrorsUntilDeadline(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.d.Deadline = 2 * time.Minute
		h.d.MinBackoff, h.d.MaxBackoff = time.Second, 16*time.Second
		h.d.PollInterval = 100 * time.Millisecond
		h.sender.setRespond(always(errServer))
		begin := time.Now()
		h.submit(t, "u1", "m1")
		h.start(t)
		advance(3 * time.Minute)

		r := h.report(t, "m1")
		assertState(t, r, reports.StateFailed)
		if !strings.Contains(r.LastError, "deadline") || !strings.Contains(r.LastError, "500") {
			t.Errorf("LastError = %q, want the deadline and the last error, 500", r.LastError)
		}
		if r.FinishedAt.Sub(begin) <= h.d.Deadline {
			t.Errorf("failed %v after submission, before the deadline %v", r.FinishedAt.Sub(begin), h.d.Deadline)
		}
		sends := h.sender.sends()
		if len(sends) < 6 {
			t.Fatalf("%d sends in %v, want at least 6", len(sends), h.d.Deadline)
		}
		assertAttempts(t, r, len(sends)) // one per send
		if last := sends[len(sends)-1].At.Sub(begin); last > h.d.Deadline {
			t.Errorf("sent %v after submission, past the deadline %v", last, h.d.Deadline)
		}
		// Each wait is the backoff, doubling from MinBackoff up to MaxBackoff,
		// ±50 %, rounded up to the poll interval.
		interval := h.d.MinBackoff
		var gaps []time.Duration
		for i := 1; i < len(sends); i++ {
			gap := sends[i].At.Sub(sends[i-1].At)
			gaps = append(gaps, gap)
			if lo, hi := interval/2, interval*3/2+h.d.PollInterval; gap < lo || gap > hi {
				t.Errorf("wait before attempt %d = %v, want within [%v, %v]", i+1, gap, lo, hi)
			}
			interval = min(2*interval, h.d.MaxBackoff)
		}
		if gaps[3] <= gaps[0] || gaps[4] <= gaps[1] {
			t.Errorf("waits %v do not grow", gaps)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: len(sends), Failed: 1})
	})
}

func TestDeliverer_Backoff(t *testing.T) {
	const draws = 200
	for _, tt := range []struct {
		name         string
		min, max     time.Duration
		attempts     int
		wantInterval time.Duration // the wait before jitter
	}{
		{"FirstRetry", time.Second, time.Minute, 1, time.Second},
		{"NoAttemptYet", time.Second, time.Minute, 0, time.Second},
		{"Doubles", time.Second, time.Minute, 3, 4 * time.Second},
		{"BelowMax", time.Second, time.Minute, 6, 32 * time.Second},
		{"CappedAtMax", time.Second, time.Minute, 7, time.Minute},
		{"ManyAttempts", time.Second, time.Minute, 1000, time.Minute},
		{"MostAttempts", time.Second, time.Minute, math.MaxInt, time.Minute},
		{"MinAboveMax", time.Hour, time.Minute, 1, time.Minute},
		{"NoMin", 0, time.Minute, 5, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := reports.NewDeliverer(reports.NewService(newMemReports(), newFakeTokens()), newFakeSender())
			d.MinBackoff, d.MaxBackoff = tt.min, tt.max
			// ±50 % jitter, but never past MaxBackoff.
			lo, hi := tt.wantInterval/2, min(tt.wantInterval*3/2, tt.max)
			least, most := time.Duration(math.MaxInt64), time.Duration(0)
			for range draws {
				wait := d.Backoff(tt.attempts)
				if wait < lo || wait > hi {
					t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", tt.attempts, wait, lo, hi)
				}
				least, most = min(least, wait), max(most, wait)
			}
			// Over many draws, some fall in each outer quarter of the range.
			if quarter := (hi - lo) / 4; tt.wantInterval > 0 && (least > lo+quarter || most < hi-quarter) {
				t.Errorf("Backoff(%d) over %d draws within [%v, %v]; want spread over [%v, %v]", tt.attempts, draws, least, most, lo, hi)
			}
		})
	}
}

// TestDeliverer_KeyMissing: a link sealed under a key that is not configured
// keeps its reports pending, naming the key id, until the deadline, and they
// are delivered once the key is configured again.
func TestDeliverer_KeyMissing(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.tokens.setErrs(nil, &tokens.KeyMissingError{KeyID: "0123456789abcdef"}, nil)
		r := h.firstAttempt(t)
		assertState(t, r, reports.StatePending)
		if !strings.Contains(r.LastError, "0123456789abcdef") {
			t.Errorf("LastError = %q, want it to name the missing key id", r.LastError)
		}
		h.tokens.setErrs(nil, nil, nil) // the operator configures the key again
		advance(h.d.MaxBackoff + h.d.PollInterval)
		assertState(t, h.report(t, "m1"), reports.StateDelivered)
	})
}
