package retryafter_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/retryafter"
)

func TestParse(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{"Empty", "", 0},
		{"Seconds", "30", 30 * time.Second},
		{"Spaces", " 2 ", 2 * time.Second},
		{"Date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"PastDate", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Negative", "-5", 0},
		{"CappedSeconds", "999999", time.Hour},
		{"SecondsPastInt64", "99999999999999999999", time.Hour},
		{"NegativePastInt64", "-99999999999999999999", 0},
		{"CappedDate", now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
		{"Garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryafter.Parse(tt.v, now, time.Hour); got != tt.want {
				t.Errorf("Parse(%q) = %v, want %v", tt.v, got, tt.want)
			}
		})
	}
}
