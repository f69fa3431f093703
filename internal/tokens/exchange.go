package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// codeClaimTTL is how long a used authorization code stays bound to its user.
// LWA codes live five minutes; an hour covers Alexa's retries with room.
const codeClaimTTL = time.Hour

// exchangeTimeout bounds one exchange with LWA, whoever waits for it. It runs
// on after Alexa's hand-over is answered, so that Alexa's retry finds its link.
// The write of LWA's answer has recordTimeout of its own.
const exchangeTimeout = 20 * time.Second

// Exchange trades Alexa's authorization code for userID's LWA tokens and stores
// them sealed, replacing any earlier link of the user, with a link.linked
// event of ActorAlexa ("relinked" when it replaced a link). A retry of the same code
// for the same user returns the stored link without calling LWA again, and
// records no event. The
// exchange runs on when ctx ends first, within exchangeTimeout, and stores its
// link when LWA answers; a retry of the code meanwhile waits for it (within
// its own ctx) rather than calling LWA again.
//
// It returns an EINVALID error wrapping ErrInvalidGrant when LWA refused the code
// or the code was already used for another user, an EUNAVAILABLE error when LWA
// or the store cannot be reached, or ctx ends before LWA answers, or the
// Service is closed (Close), and EINVALID for an empty code or a user id that
// CheckUserID refuses.
func (s *Service) Exchange(ctx context.Context, userID string, code Secret, region string) (*Link, error) {
	if err := CheckUserID(userID); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, Errorf(EINVALID, "code is required")
	}
	hash := CodeHash(code)
	owner, err := s.store.ClaimCode(ctx, hash, userID, s.Now().Add(codeClaimTTL))
	if err != nil {
		return nil, fmt.Errorf("claim code: %w", err)
	}
	if owner != userID {
		return nil, fmt.Errorf("code was used for another user: %w", ErrInvalidGrant)
	}
	if l, err := s.store.GetLink(ctx, userID); err == nil && l.CodeHash == hash && l.State == StateLinked {
		return l, nil // Alexa's retry of a hand-over that succeeded
	} else if err != nil && !errors.Is(err, ErrLinkNotFound) {
		return nil, fmt.Errorf("read link: %w", err)
	}

	return s.shareDetached(ctx, "exchange\x00"+userID+"\x00"+hash, exchangeTimeout, func(xctx context.Context) (*Link, error) {
		return s.doExchange(xctx, userID, code, hash, region)
	})
}

// doExchange trades code, whose hash is hash, with LWA and stores userID's new
// link. It runs detached from the caller, so that LWA's answer is stored even
// when it comes after the caller gave up: Alexa's retry of the code then finds
// the link. The write runs within recordTimeout, not ctx's deadline, so that a
// grant LWA issued just before that deadline (the used code's only one) is
// stored.
func (s *Service) doExchange(ctx context.Context, userID string, code Secret, hash, region string) (*Link, error) {
	if leaser, ok := s.store.(Leaser); ok {
		l, done, err := s.exchangeLease(ctx, leaser, userID, hash)
		if err != nil || done {
			return l, err
		}
		defer leaser.ReleaseLease(context.WithoutCancel(ctx), exchangeLeaseKey(hash), s.owner)
	}
	grant, err := s.lwa.Exchange(ctx, code)
	if errors.Is(err, ErrInvalidGrant) {
		// A concurrent hand-over of the same code may have won the exchange.
		if l, gerr := s.store.GetLink(ctx, userID); gerr == nil && l.CodeHash == hash && l.State == StateLinked {
			return l, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", err)
	}
	now := s.Now()
	wctx, cancel := s.recordContext(ctx)
	defer cancel()
	l, err := s.write(wctx, userID, func(l *Link) (*Link, []Event, error) {
		sealed, err := s.seal(userID, grant)
		if err != nil {
			return nil, nil, err
		}
		next := &Link{
			UserID: userID, SkillID: s.SkillID, State: StateLinked, Region: region,
			LinkedAt: now, LastRefreshedAt: now, AccessTokenExpiresAt: grant.Expiry,
			CodeHash: hash, Tokens: sealed,
		}
		if l != nil {
			next.Version = l.Version
		}
		linked := s.event(EventLinked, userID, ActorAlexa, map[string]any{"region": region, "relinked": l != nil})
		return next, []Event{linked}, nil
	})
	if err != nil {
		return nil, err
	}
	s.Logger.Info("exchanged code", "user_id", userID, "expires_at", l.AccessTokenExpiresAt)
	return l, nil
}

// exchangeLeaseKey is the Leaser key of the exchange of the code whose hash is
// hash: a lease of its own, not the user's refresh lease, so that a hand-over
// never waits for a refresh of the user's old link. It starts with a NUL byte,
// which no user id the broker serves holds in practice, followed by a label.
func exchangeLeaseKey(hash string) string { return "\x00exchange\x00" + hash }

// exchangeLease takes, across processes, the lease of the exchange of the code
// whose hash is hash before it is traded with LWA. While another process holds
// it (it is exchanging this code for Alexa's earlier try), it waits: when a
// link of userID made of this code appears, it returns that link with done
// true, and LWA is not asked again (it would refuse the used code); once the
// lease is free it returns with the lease held (done false), and the caller
// exchanges.
func (s *Service) exchangeLease(ctx context.Context, leaser Leaser, userID, hash string) (*Link, bool, error) {
	key, owner := exchangeLeaseKey(hash), s.owner
	for {
		now := s.Now()
		held, err := leaser.AcquireLease(ctx, key, owner, now, now.Add(leaseTTL))
		if err != nil {
			return nil, false, fmt.Errorf("take lease for exchange: %w", err)
		}
		l, err := s.store.GetLink(ctx, userID)
		switch {
		case err == nil && l.CodeHash == hash && l.State == StateLinked:
			if held {
				_ = leaser.ReleaseLease(context.WithoutCancel(ctx), key, owner)
			}
			return l, true, nil // another process exchanged this code
		case err != nil && !errors.Is(err, ErrLinkNotFound):
			if held {
				_ = leaser.ReleaseLease(context.WithoutCancel(ctx), key, owner)
			}
			return nil, false, fmt.Errorf("read link: %w", err)
		case held:
			return nil, false, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, Errorf(EUNAVAILABLE, "another broker instance is changing the user's link; try again")
		case <-time.After(leasePoll):
		}
	}
}
