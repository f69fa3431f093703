package settle_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/settle"
)

func TestQueues_Wait(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	type call struct {
		queue string
		ids   []string // as listed, oldest first
		at    time.Duration
		want  time.Duration
	}
	for _, tt := range []struct {
		name  string
		lag   time.Duration
		calls []call
	}{
		{"NoLag", 0, []call{{"u1", []string{"e1"}, 0, 0}, {"u1", []string{"e2"}, 0, 0}}},
		{"NothingListed", time.Second, []call{{"u1", nil, 0, 0}}},
		{"FirstListingWaits", time.Second, []call{
			{"u1", []string{"e1"}, 0, time.Second},
			{"u1", []string{"e1"}, 400 * time.Millisecond, 600 * time.Millisecond},
			{"u1", []string{"e1"}, time.Second, 0},
			{"u1", []string{"e1"}, 30 * time.Second, 0}, // settled stays settled
		}},
		{"OlderHeadAppears", time.Second, []call{
			{"u1", []string{"e2"}, 0, time.Second},
			// The index now lists an older head: it waits from its own listing.
			{"u1", []string{"e1", "e2"}, 500 * time.Millisecond, time.Second},
			{"u1", []string{"e1", "e2"}, 1500 * time.Millisecond, 0},
			// e2 was listed 1.5 s ago: once e1 is sent, it goes at once.
			{"u1", []string{"e2"}, 1500 * time.Millisecond, 0},
		}},
		{"BacklogSettlesTogether", time.Second, []call{
			{"u1", []string{"e1", "e2", "e3"}, 0, time.Second},
			{"u1", []string{"e1", "e2", "e3"}, time.Second, 0},
			{"u1", []string{"e2", "e3"}, 1100 * time.Millisecond, 0},
			{"u1", []string{"e3"}, 1200 * time.Millisecond, 0},
		}},
		{"UnlistedForgotten", time.Second, []call{
			{"u1", []string{"e1", "e2"}, 0, time.Second},
			{"u1", []string{"e1"}, 100 * time.Millisecond, 900 * time.Millisecond},
			// e2 left the listing (delivered elsewhere, say); listed again, it waits anew.
			{"u1", []string{"e2"}, 2 * time.Second, time.Second},
		}},
		{"QueuesApart", time.Second, []call{
			{"u1", []string{"e1"}, 0, time.Second},
			{"u2", []string{"e9"}, 800 * time.Millisecond, time.Second},
			{"u1", []string{"e1"}, time.Second, 0},
			{"u2", []string{"e9"}, time.Second, 800 * time.Millisecond},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := &settle.Queues{Lag: tt.lag}
			for i, c := range tt.calls {
				if got := q.Wait(c.queue, c.ids, t0.Add(c.at)); got != c.want {
					t.Errorf("call %d: Wait(%s, %v) at +%v = %v, want %v", i, c.queue, c.ids, c.at, got, c.want)
				}
				// Left agrees with Wait, now and a moment later.
				if got := q.Left(c.queue, t0.Add(c.at)); got != c.want && len(c.ids) > 0 {
					t.Errorf("call %d: Left(%s) at +%v = %v, want %v", i, c.queue, c.at, got, c.want)
				}
				if got, want := q.Left(c.queue, t0.Add(c.at+c.want/2)), c.want-c.want/2; got != want && len(c.ids) > 0 {
					t.Errorf("call %d: Left(%s) at +%v = %v, want %v", i, c.queue, c.at+c.want/2, got, want)
				}
			}
			if got := q.Left("unknown", t0); got != 0 {
				t.Errorf("Left of a queue never listed = %v, want 0", got)
			}
		})
	}
}

// TestQueues_Forgets: queues long unlisted are dropped as new ones come, and
// an item of one listed again after that waits once more.
func TestQueues_Forgets(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	q := &settle.Queues{Lag: time.Second}
	q.Wait("old", []string{"e1"}, t0)
	later := t0.Add(time.Hour)
	for i := range 100 {
		q.Wait(fmt.Sprintf("u%d", i), []string{"e"}, later)
	}
	if got := q.Wait("old", []string{"e1"}, later); got != time.Second {
		t.Errorf("an item listed an hour ago waits %v when listed again, want %v", got, time.Second)
	}
}
