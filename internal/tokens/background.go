package tokens

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// RefreshInBackground keeps the tokens of users who asked for one within window
// fresh ahead of use until ctx ends: every interval it refreshes, spread with
// jitter over the interval, the links that would otherwise need an on-demand
// refresh before the next round. It shares the per-user refresh with callers,
// so it never runs beside an on-demand refresh of the same user. Idle links
// cost nothing. It returns at once when window or interval is not positive.
func (s *Service) RefreshInBackground(ctx context.Context, window, interval time.Duration) {
	if window <= 0 || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, horizon := s.Now(), s.RefreshAhead+2*interval
		for _, userID := range s.usage.due(now.Add(-window), now.Add(horizon)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				select { // spread the round's refreshes over half an interval
				case <-time.After(rand.N(interval / 2)):
				case <-ctx.Done():
					return
				}
				sem <- struct{}{}
				defer func() { <-sem }()
				s.refreshAhead(ctx, userID, horizon)
			}()
		}
	}
}

// refreshAhead refreshes userID's tokens unless they stay fresh for horizon,
// and records the new expiry; it forgets users whose link is gone or needs
// re-linking.
func (s *Service) refreshAhead(ctx context.Context, userID string, horizon time.Duration) {
	l, err := s.refresh(ctx, userID, horizon)
	if err == nil {
		s.usage.expires(userID, l.AccessTokenExpiresAt)
		return
	}
	s.Logger.Warn("background refresh failed", "user_id", userID, "err", err.Error())
	if c := ErrorCode(err); c == ERELINK || c == ENOTFOUND {
		s.usage.forget(userID)
	}
}
