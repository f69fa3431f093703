package tokens

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

const (
	// leaseTTL is how long a refresh lease lasts: longer than a refresh may
	// take, the write of LWA's answer included, so that only a crashed
	// holder's lease runs out.
	leaseTTL = refreshTimeout + recordTimeout + 5*time.Second
	// leasePoll is how often a process waiting for another's refresh re-reads.
	leasePoll = 25 * time.Millisecond
)

// newOwner returns a random name for this process's refresh leases.
func newOwner() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lease takes userID's refresh lease across processes. While another process
// holds it, lease waits for that process's result by re-reading the link, and
// returns it with done true once it is fresh for ahead. With the lease held, it
// returns the link as read after taking it (done false): the caller refreshes,
// then releases the lease.
//
// It returns an ERELINK error when the link needs re-linking, ErrLinkNotFound
// when it is gone, and an EUNAVAILABLE error when ctx ends while another
// process holds the lease.
func (s *Service) lease(ctx context.Context, leaser Leaser, userID string, ahead time.Duration) (*Link, bool, error) {
	for {
		now := s.Now()
		held, err := leaser.AcquireLease(ctx, userID, s.owner, now, now.Add(leaseTTL))
		if err != nil {
			return nil, false, fmt.Errorf("take refresh lease: %w", err)
		}
		l, err := s.store.GetLink(ctx, userID)
		switch {
		case err != nil && held:
			_ = leaser.ReleaseLease(context.WithoutCancel(ctx), userID, s.owner)
			return nil, false, err
		case err != nil:
			return nil, false, err
		case l.State == StateRelinkRequired || l.AccessTokenExpiresAt.Sub(s.Now()) > ahead:
			if held {
				_ = leaser.ReleaseLease(context.WithoutCancel(ctx), userID, s.owner)
			}
			if l.State == StateRelinkRequired {
				return nil, true, errRelink
			}
			return l, true, nil // another process refreshed meanwhile
		case held:
			return l, false, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, Errorf(EUNAVAILABLE, "another broker instance is refreshing the user's tokens; try again")
		case <-time.After(leasePoll):
		}
	}
}
