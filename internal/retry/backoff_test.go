package retry_test

import (
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/retry"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attempts int
		interval time.Duration
	}{
		{"First", 1, time.Second},
		{"ZeroIsFirst", 0, time.Second},
		{"Doubles", 4, 8 * time.Second},
		{"Capped", 11, 10 * time.Minute},
		{"HugeCapped", 1 << 20, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 200 {
				got := retry.Backoff(tc.attempts, time.Second, 10*time.Minute)
				if got < tc.interval/2 || got > tc.interval*3/2 {
					t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", tc.attempts, got, tc.interval/2, tc.interval*3/2)
				}
			}
		})
	}
	t.Run("ZeroInterval", func(t *testing.T) {
		if got := retry.Backoff(3, 0, 0); got != 0 {
			t.Fatalf("Backoff with no interval = %v, want 0", got)
		}
	})
}
