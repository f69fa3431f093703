package reports_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/reports"
)

func TestPendingLimit(t *testing.T) {
	for _, tt := range []struct{ limit, want int }{
		{-1, reports.DefaultPendingLimit},
		{0, reports.DefaultPendingLimit},
		{1, 1},
		{reports.MaxPendingLimit, reports.MaxPendingLimit},
		{reports.MaxPendingLimit + 1, reports.MaxPendingLimit},
	} {
		if got := reports.PendingLimit(tt.limit); got != tt.want {
			t.Errorf("PendingLimit(%d) = %d, want %d", tt.limit, got, tt.want)
		}
	}
}
