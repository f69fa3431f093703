package retry_test

import (
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/retry"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name      string
		attempts  int
		low, high time.Duration
	}{
		{"First", 1, time.Second / 2, 3 * time.Second / 2},
		{"ZeroIsFirst", 0, time.Second / 2, 3 * time.Second / 2},
		{"Doubles", 4, 4 * time.Second, 12 * time.Second},
		// 512 s spread by half would reach 768 s: the cap holds.
		{"JitterCapped", 10, 256 * time.Second, 10 * time.Minute},
		{"Capped", 11, 5 * time.Minute, 10 * time.Minute},
		{"HugeCapped", 1 << 20, 5 * time.Minute, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lowest, highest time.Duration
			for i := range 2000 {
				got := retry.Backoff(tc.attempts, time.Second, 10*time.Minute)
				if got < tc.low || got > tc.high {
					t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", tc.attempts, got, tc.low, tc.high)
				}
				if i == 0 {
					lowest, highest = got, got
				}
				lowest, highest = min(lowest, got), max(highest, got)
			}
			// Jittered: 2000 draws spread over most of the range.
			if spread := tc.high - tc.low; highest-lowest < spread*3/4 {
				t.Errorf("Backoff(%d) drew within [%v, %v] only, want most of [%v, %v]", tc.attempts, lowest, highest, tc.low, tc.high)
			}
		})
	}
	t.Run("MaxWaitHuge", func(t *testing.T) {
		const maxWait = time.Duration(1<<63 - 1)
		if got := retry.Backoff(70, time.Second, maxWait); got < maxWait/2 || got > maxWait {
			t.Fatalf("Backoff with the largest cap = %v, want within [%v, %v]", got, maxWait/2, maxWait)
		}
	})
	t.Run("ZeroInterval", func(t *testing.T) {
		if got := retry.Backoff(3, 0, 0); got != 0 {
			t.Fatalf("Backoff with no interval = %v, want 0", got)
		}
	})
}
