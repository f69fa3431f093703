package tokens_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// sweepingStore is a tokens.Store that is also a tokens.ClaimSweeper and
// records the times it was asked to sweep before. Only DeleteExpiredClaims may
// be called: the embedded Store is nil.
type sweepingStore struct {
	tokens.Store
	mu      sync.Mutex
	befores []time.Time
	err     error
}

var _ tokens.ClaimSweeper = (*sweepingStore)(nil)

func (s *sweepingStore) DeleteExpiredClaims(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.befores = append(s.befores, before)
	return 1, s.err
}

func (s *sweepingStore) calls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.befores...)
}

func TestService_SweepClaimsInBackground(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"Sweeps", nil},
		{"KeepsSweepingAfterAnError", tokens.Errorf(tokens.EUNAVAILABLE, "store down")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &sweepingStore{err: tt.err}
				svc := tokens.NewService(store, nil, nil)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				start := time.Now()
				go func() { defer close(done); svc.SweepClaimsInBackground(ctx, 10*time.Minute) }()

				synctest.Wait()
				if got := store.calls(); len(got) != 1 || !got[0].Equal(start) {
					t.Fatalf("sweeps at start = %v, want one before %v", got, start)
				}
				time.Sleep(25 * time.Minute)
				synctest.Wait()
				got := store.calls()
				if len(got) != 3 {
					t.Fatalf("sweeps after 25m = %d, want 3 (at start, 10m, 20m)", len(got))
				}
				for i, before := range got {
					if want := start.Add(time.Duration(i) * 10 * time.Minute); !before.Equal(want) {
						t.Errorf("sweep %d before %v, want the time of the sweep %v", i, before, want)
					}
				}
				cancel()
				<-done
			})
		})
	}

	t.Run("NotASweeper", func(t *testing.T) {
		svc := tokens.NewService(newMemStore(), nil, nil)
		svc.SweepClaimsInBackground(t.Context(), time.Minute) // returns at once
	})

	t.Run("NoInterval", func(t *testing.T) {
		store := &sweepingStore{}
		tokens.NewService(store, nil, nil).SweepClaimsInBackground(t.Context(), 0)
		if got := store.calls(); len(got) != 0 {
			t.Errorf("sweeps with interval 0 = %d, want none", len(got))
		}
	})
}
