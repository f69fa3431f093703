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

// Exchange trades Alexa's authorization code for userID's LWA tokens and stores
// them sealed, replacing any earlier link of the user. A retry of the same code
// for the same user returns the stored link without calling LWA again.
//
// It returns an EINVALID error wrapping ErrInvalidGrant when LWA refused the code
// or the code was already used for another user, an EUNAVAILABLE error when LWA
// or the store cannot be reached, and EINVALID for an empty user or code.
func (s *Service) Exchange(ctx context.Context, userID string, code Secret, region string) (*Link, error) {
	if userID == "" || code == "" {
		return nil, Errorf(EINVALID, "user and code are required")
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

	v, err, _ := s.flight.Do("exchange\x00"+userID+"\x00"+hash, func() (any, error) {
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
		return s.write(ctx, userID, func(l *Link) (*Link, error) {
			sealed, err := s.seal(userID, grant)
			if err != nil {
				return nil, err
			}
			next := &Link{
				UserID: userID, State: StateLinked, Region: region,
				LinkedAt: now, LastRefreshedAt: now, AccessTokenExpiresAt: grant.Expiry,
				CodeHash: hash, Tokens: sealed,
			}
			if l != nil {
				next.Version = l.Version
			}
			return next, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return v.(*Link), nil
}
