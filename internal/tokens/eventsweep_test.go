package tokens_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// eventSweepStore is a tokens.Store that is also a tokens.EventStore and
// records the times it was asked to delete events before. Only
// DeleteEventsBefore may be called: the embedded Store is nil.
type eventSweepStore struct {
	tokens.Store
	mu      sync.Mutex
	befores []time.Time
	err     error
}

var _ tokens.EventStore = (*eventSweepStore)(nil)

func (s *eventSweepStore) ListEvents(context.Context, tokens.EventFilter, string, int) (tokens.EventPage, error) {
	return tokens.EventPage{}, nil
}

func (s *eventSweepStore) DeleteEventsBefore(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.befores = append(s.befores, before)
	return 2, s.err
}

func (s *eventSweepStore) calls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.befores...)
}

func TestService_SweepEventsInBackground(t *testing.T) {
	const retention, interval = 90 * 24 * time.Hour, time.Hour
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"Sweeps", nil},
		{"KeepsSweepingAfterAnError", tokens.Errorf(tokens.EUNAVAILABLE, "store down")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &eventSweepStore{err: tt.err}
				svc := tokens.NewService(store, nil, nil)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				start := time.Now()
				go func() { defer close(done); svc.SweepEventsInBackground(ctx, retention, interval) }()

				synctest.Wait()
				if got := store.calls(); len(got) != 1 || !got[0].Equal(start.Add(-retention)) {
					t.Fatalf("sweeps at start = %v, want one before %v", got, start.Add(-retention))
				}
				time.Sleep(2*interval + interval/2)
				synctest.Wait()
				got := store.calls()
				if len(got) != 3 {
					t.Fatalf("sweeps after 2.5 intervals = %d, want 3", len(got))
				}
				for i, before := range got {
					if want := start.Add(time.Duration(i)*interval - retention); !before.Equal(want) {
						t.Errorf("sweep %d before %v, want retention before its time, %v", i, before, want)
					}
				}
				cancel()
				<-done
			})
		})
	}

	t.Run("NotAnEventStore", func(t *testing.T) {
		svc := tokens.NewService(&sweepingStore{}, nil, nil)
		svc.SweepEventsInBackground(t.Context(), retention, interval) // returns at once
	})

	t.Run("NoRetentionOrInterval", func(t *testing.T) {
		store := &eventSweepStore{}
		svc := tokens.NewService(store, nil, nil)
		svc.SweepEventsInBackground(t.Context(), 0, interval)
		svc.SweepEventsInBackground(t.Context(), retention, 0)
		if got := store.calls(); len(got) != 0 {
			t.Errorf("sweeps = %d, want none", len(got))
		}
	})
}
