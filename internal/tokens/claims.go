package tokens

import (
	"context"
	"time"
)

// ClaimSweeper is an optional ability of a Store whose storage keeps code
// claims until they are removed: it removes the claims that have expired. A
// claim that expired is free for anyone to take over (see Store.ClaimCode), so
// removing it changes no answer of the store; it only gives the space back,
// which made-up codes would otherwise fill for ever. A store whose storage
// expires records by itself (DynamoDB's time to live) need not implement it.
//
// A sweeper compares the time it is given, never its own clock. It is safe for
// concurrent use, also beside ClaimCode. The conformance suite
// internal/store/storetest (RunClaimSweeper) holds every implementation to
// this comment.
type ClaimSweeper interface {
	// DeleteExpiredClaims removes every code claim that expired before before
	// (a claim that expires at before stays), and returns how many it removed.
	//
	// It returns an EUNAVAILABLE error when the storage cannot be reached or
	// does not answer before ctx ends, and an EINTERNAL error when stored
	// claims cannot be decoded; those stay where they are, and the count is
	// of the claims removed before or beside the error.
	DeleteExpiredClaims(ctx context.Context, before time.Time) (int, error)
}

// SweepClaimsInBackground removes the expired code claims of the Service's
// store, once at once and then every interval, until ctx ends. It returns at
// once when the store is not a ClaimSweeper or interval is not positive. A
// sweep that fails is logged and tried again at the next interval.
func (s *Service) SweepClaimsInBackground(ctx context.Context, interval time.Duration) {
	sweeper, ok := s.store.(ClaimSweeper)
	if !ok || interval <= 0 {
		return
	}
	s.sweepEvery(ctx, interval, "expired code claims", func(now time.Time) (int, error) {
		return sweeper.DeleteExpiredClaims(ctx, now)
	})
}

// sweepEvery calls sweep with the current time once at once and then every
// interval until ctx ends, logging how many records of what it removed, and a
// failure (tried again at the next interval). It is the one loop of the
// Service's background removals.
func (s *Service) sweepEvery(ctx context.Context, interval time.Duration, what string, sweep func(now time.Time) (int, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := sweep(s.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.Logger.Warn("removing "+what+" failed", "removed", n, "err", err.Error())
		case n > 0:
			s.Logger.Info("removed "+what, "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
