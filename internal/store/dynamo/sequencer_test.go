package dynamo

import (
	"testing"
	"time"
)

func TestSequencer(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	us := t0.UnixMicro()
	for _, tt := range []struct {
		name string
		// clock is what the wall clock reads at each call of next; a
		// negative reading instead calls observe with its absolute value.
		clock []time.Duration
		want  []int64 // next's answers, past us
	}{
		{"ClockMoves", []time.Duration{0, time.Millisecond, 2 * time.Millisecond}, []int64{0, 1000, 2000}},
		{"ClockStandsStill", []time.Duration{0, 0, 0}, []int64{0, 1, 2}},
		{"ClockGoesBack", []time.Duration{time.Second, 0, 2 * time.Second}, []int64{1e6, 1e6 + 1, 2e6}},
		{"SeenAhead", []time.Duration{0, -time.Second, 0}, []int64{0, 1e6 + 1}},
		{"SeenBehind", []time.Duration{time.Second, -time.Millisecond, time.Second}, []int64{1e6, 1e6 + 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var now time.Time
			q := &sequencer{now: func() time.Time { return now }}
			var got []int64
			for _, d := range tt.clock {
				if d < 0 {
					q.observe(us + (-d).Microseconds())
					continue
				}
				now = t0.Add(d)
				got = append(got, q.next()-us)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("next answered %v past the clock, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("next answered %v past the clock, want %v", got, tt.want)
					break
				}
			}
		})
	}
}
