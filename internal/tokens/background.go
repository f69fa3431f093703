package tokens

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// backgroundWorkers is how many background refreshes run at a time: the whole
// work in flight of RefreshInBackground, LWA calls and waits alike.
const backgroundWorkers = 4

// RefreshInBackground keeps the tokens of users who asked for one within window
// fresh ahead of use until ctx ends: every interval it refreshes, in random
// order spread over half the interval, the links that would otherwise need an
// on-demand refresh before the next round. It shares the per-user refresh with
// callers, so it never runs beside an on-demand refresh of the same user. Idle
// links cost nothing. It returns at once when window or interval is not
// positive.
//
// Its work is bounded whatever LWA does: backgroundWorkers goroutines refresh,
// one hands them the users. When LWA is slow, a round takes longer and the
// next one starts late (ticks are dropped); a user still being refreshed from
// an earlier round is skipped.
//
// Token records the users who ask for one until RefreshInBackground is
// called with background refresh off (window or interval not positive): from
// then on it records none, and what it had recorded is forgotten, since only
// this loop forgets the users who stopped asking.
func (s *Service) RefreshInBackground(ctx context.Context, window, interval time.Duration) {
	if window <= 0 || interval <= 0 {
		s.usage.turnOff()
		return
	}
	type job struct {
		userID  string
		horizon time.Duration
	}
	jobs := make(chan job)
	var (
		mu   sync.Mutex
		busy = map[string]bool{} // users handed to a worker and not done yet
		wg   sync.WaitGroup
	)
	for range backgroundWorkers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() == nil {
					s.refreshAhead(ctx, j.userID, j.horizon)
				}
				mu.Lock()
				delete(busy, j.userID)
				mu.Unlock()
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)

	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, horizon := s.Now(), s.RefreshAhead+2*interval
		due := s.usage.due(now.Add(-window), now.Add(horizon))
		rand.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
		start, spread := time.Now(), interval/2
		for i, userID := range due {
			// User i's turn comes i/len of the way through half the interval,
			// or later when every worker is busy.
			if wait := time.Until(start.Add(spread * time.Duration(i) / time.Duration(len(due)))); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
			mu.Lock()
			skip := busy[userID]
			busy[userID] = true
			mu.Unlock()
			if skip {
				continue
			}
			select {
			case jobs <- job{userID, horizon}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// refreshAhead refreshes userID's tokens unless they stay fresh for horizon,
// and records the new expiry; it forgets users whose link is gone or needs
// re-linking.
func (s *Service) refreshAhead(ctx context.Context, userID string, horizon time.Duration) {
	l, err := s.refresh(ctx, userID, horizon, byBackground)
	if err == nil {
		s.usage.expires(userID, l.AccessTokenExpiresAt)
		return
	}
	s.Logger.Warn("background refresh failed", "user_id", userID, "err", err.Error())
	if c := ErrorCode(err); c == ERELINK || c == ENOTFOUND {
		s.usage.forget(userID)
	}
}
