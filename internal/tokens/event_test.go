package tokens_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestNewEventID(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	t.Run("Layout", func(t *testing.T) {
		id := tokens.NewEventID(at)
		if !strings.HasPrefix(id, "evt_") || len(id) != 4+26 {
			t.Errorf("id %q, want evt_ and 26 characters", id)
		}
	})

	t.Run("MonotonicAtOneTime", func(t *testing.T) {
		last := tokens.NewEventID(at)
		for i := range 10000 {
			id := tokens.NewEventID(at)
			if id <= last {
				t.Fatalf("id %d %q does not sort after %q", i, id, last)
			}
			last = id
		}
	})

	t.Run("SortsByTime", func(t *testing.T) {
		later := tokens.NewEventID(at.Add(time.Hour))
		if earlier := tokens.NewEventID(at.Add(-time.Hour)); earlier <= later {
			// Made after a later one, in a clock that went back: still after it.
			t.Errorf("id made after %q sorts before it: %q", later, earlier)
		}
		next := tokens.NewEventID(at.Add(2 * time.Hour))
		if next[:14] == later[:14] {
			t.Errorf("ids an hour apart share their time: %q %q", later, next)
		}
	})
}
