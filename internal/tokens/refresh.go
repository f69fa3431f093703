package tokens

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// refreshTimeout bounds one refresh with LWA, whoever waits for it. The write
// of LWA's answer has recordTimeout of its own.
const refreshTimeout = 20 * time.Second

// Refresh refreshes userID's tokens with LWA now, even when they are fresh, and
// returns the updated link: a refresh the broker needs (its deliverer's, after
// Alexa refused a token), recorded as a link.refreshed event of ActorBroker
// with the trigger "caller". Errors are as for Token.
func (s *Service) Refresh(ctx context.Context, userID string) (*Link, error) {
	return s.refresh(ctx, userID, math.MaxInt64, byCaller)
}

// RefreshByOperator refreshes userID's tokens as Refresh does, for an operator:
// its link.refreshed event has the trigger "operator" and actor as its actor,
// the calling token's client. It returns an EINVALID error when actor is
// empty; other errors are as for Token.
func (s *Service) RefreshByOperator(ctx context.Context, userID, actor string) (*Link, error) {
	if actor == "" {
		return nil, Errorf(EINVALID, "the refresh has no actor")
	}
	return s.refresh(ctx, userID, math.MaxInt64, cause{TriggerOperator, actor})
}

// refresh runs one refresh of userID at a time in this process: callers that
// arrive meanwhile wait for its result, each within its own deadline. The
// refresh itself is not cut short by one impatient caller: it runs detached,
// within refreshTimeout, and Close waits for it. A caller that has given up
// already starts none. by is who set the refresh off; a caller that joins a
// refresh in flight joins its cause too.
func (s *Service) refresh(ctx context.Context, userID string, ahead time.Duration, by cause) (*Link, error) {
	if ctx.Err() != nil {
		return nil, Errorf(EUNAVAILABLE, "the caller gave up before the refresh")
	}
	return s.shareDetached(ctx, "refresh\x00"+userID, refreshTimeout, func(rctx context.Context) (*Link, error) {
		return s.doRefresh(rctx, userID, ahead, by)
	})
}

// doRefresh refreshes userID's tokens unless they stay fresh for ahead, in
// steps: read the link and check it still needs a refresh; take the refresh
// lease across processes (or wait for its holder's result); call LWA; on
// invalid_grant mark the link RELINK_REQUIRED; else store the rotated grant
// before anything else is done with LWA's answer, with a link.refreshed event
// of by.
func (s *Service) doRefresh(ctx context.Context, userID string, ahead time.Duration, by cause) (*Link, error) {
	l, done, err := s.readStale(ctx, userID, ahead)
	if err != nil || done {
		return l, err
	}
	if leaser, ok := s.store.(Leaser); ok {
		l, done, err = s.lease(ctx, leaser, userID, ahead)
		if err != nil || done {
			return l, err
		}
		defer leaser.ReleaseLease(context.WithoutCancel(ctx), userID, s.owner)
	}
	old, grant, err := s.callLWA(ctx, l)
	switch {
	case errors.Is(err, ErrInvalidGrant):
		return s.refused(ctx, l, old.RefreshToken)
	case err != nil:
		return nil, err
	}
	return s.storeGrant(ctx, l, old.RefreshToken, grant, by)
}

// readStale reads userID's link and reports done with the link when it needs no
// refresh: it is fresh for ahead, refreshed by someone else since the caller
// looked. It returns ErrLinkNotFound when the link is gone and an ERELINK error
// when the user must link again.
func (s *Service) readStale(ctx context.Context, userID string, ahead time.Duration) (l *Link, done bool, err error) {
	start := s.Now()
	l, err = s.store.GetLink(ctx, userID)
	switch {
	case err != nil:
		return nil, false, err
	case l.State == StateRelinkRequired:
		return nil, false, errRelink
	case l.AccessTokenExpiresAt.Sub(start) > ahead:
		return l, true, nil
	}
	return l, false, nil
}

// callLWA opens l's tokens and trades its refresh token with LWA for a new
// grant, whose RefreshToken is the old one when LWA did not rotate it. It
// returns the old grant too. It returns LWA's ErrInvalidGrant (wrapped) as it
// is, and logs and wraps any other failure of LWA's.
func (s *Service) callLWA(ctx context.Context, l *Link) (old, grant Grant, err error) {
	old, err = s.open(l)
	if err != nil {
		return Grant{}, Grant{}, err
	}
	grant, err = s.lwa.Refresh(ctx, old.RefreshToken)
	switch {
	case errors.Is(err, ErrInvalidGrant):
		return old, Grant{}, err
	case err != nil:
		s.Logger.Warn("refresh failed", "user_id", l.UserID, "err", err.Error())
		return old, Grant{}, fmt.Errorf("refresh tokens: %w", err)
	}
	if grant.RefreshToken == "" {
		grant.RefreshToken = old.RefreshToken // LWA did not rotate it
	}
	return old, grant, nil
}

// refused handles LWA's invalid_grant for used, the refresh token of l, the
// link as it was read: it marks the link RELINK_REQUIRED while it still holds
// used, and returns an ERELINK error; its link.relink_required event has the
// reason invalid_grant. A link re-linked or refreshed meanwhile is not the
// refused token's own: refused returns it, fresh. A write that kept the
// tokens (a re-seal under another key) does not save the link. It returns
// ErrLinkNotFound when the link was deleted meanwhile. The write runs within
// recordTimeout, not ctx's deadline, so that LWA's answer is recorded however
// late it came.
func (s *Service) refused(ctx context.Context, l *Link, used Secret) (*Link, error) {
	s.Logger.Warn("LWA refused the refresh token; link needs re-linking", "user_id", l.UserID)
	ctx, cancel := s.recordContext(ctx)
	defer cancel()
	cur, err := s.write(ctx, l.UserID, func(cur *Link) (*Link, []Event, error) {
		if cur == nil || cur.CodeHash != l.CodeHash || cur.State != StateLinked {
			return nil, nil, nil // deleted, re-linked or marked meanwhile: leave it
		}
		if cur.Version != l.Version {
			// Written since we read: refreshed, if its refresh token changed.
			if g, err := s.open(cur); err != nil || g.RefreshToken != used {
				return nil, nil, err
			}
		}
		next := *cur
		next.State = StateRelinkRequired
		e := s.event(EventRelinkRequired, l.UserID, ActorBroker, map[string]any{"reason": ReasonInvalidGrant})
		return &next, []Event{e}, nil
	})
	switch {
	case err != nil:
		return nil, err
	case cur == nil:
		return nil, ErrLinkNotFound
	case cur.Version != l.Version && cur.State == StateLinked:
		return cur, nil
	}
	return nil, errRelink
}

// storeGrant stores grant, which LWA issued for used, the refresh token of l
// (the link as it was read), as the link's tokens. A link written meanwhile
// takes the grant only while it still holds used and is still LINKED: then the
// grant is the newest LWA issued for it. A link deleted or re-linked meanwhile
// is not the grant's own, and a link marked RELINK_REQUIRED meanwhile (Alexa's
// 403, RequireRelink) must stay marked; storeGrant leaves such a link and
// returns it as it is (ErrLinkNotFound when it is gone, an ERELINK error when
// the user must link again). A marked link's grant is dropped rather than
// stored: no LWA call is made for the link again, and the only way back is a
// new hand-over, which replaces its tokens, so the grant could never be used,
// while storing it would make the link look refreshed. The grant stored, it
// records a link.refreshed event of by. The write runs within recordTimeout,
// not ctx's deadline, so that a grant LWA issued just before that deadline
// (its rotated refresh token the only good one) is not lost.
func (s *Service) storeGrant(ctx context.Context, l *Link, used Secret, grant Grant, by cause) (*Link, error) {
	now := s.Now()
	ctx, cancel := s.recordContext(ctx)
	defer cancel()
	var lost bool
	next, err := s.write(ctx, l.UserID, func(cur *Link) (*Link, []Event, error) {
		if cur == nil || cur.CodeHash != l.CodeHash {
			lost = true
			return nil, nil, nil // deleted or re-linked meanwhile: this grant is of an older link
		}
		if cur.State != StateLinked {
			lost = true
			return nil, nil, nil // marked meanwhile: the mark stands
		}
		if cur.Version != l.Version {
			// Somebody wrote since we read. Ours is the newest token LWA issued
			// from the refresh token we used, unless that token changed.
			if g, err := s.open(cur); err != nil || g.RefreshToken != used {
				lost = true
				return nil, nil, err
			}
		}
		sealed, err := s.seal(l.UserID, grant)
		if err != nil {
			return nil, nil, err
		}
		n := *cur
		n.State, n.Tokens = StateLinked, sealed
		n.AccessTokenExpiresAt, n.LastRefreshedAt = grant.Expiry, now
		e := s.event(EventRefreshed, l.UserID, by.actor, map[string]any{
			"trigger": string(by.trigger), "access_token_expires_at": grant.Expiry.UTC().Format(time.RFC3339Nano),
		})
		return &n, []Event{e}, nil
	})
	switch {
	case err != nil:
		return nil, err
	case lost && next == nil:
		return nil, ErrLinkNotFound
	case lost && next.State != StateLinked:
		s.Logger.Warn("link became RELINK_REQUIRED during its refresh; LWA's new tokens are dropped", "user_id", l.UserID)
		return nil, errRelink
	case lost:
		return next, nil
	}
	s.Logger.Info("refreshed tokens", "user_id", l.UserID, "expires_at", next.AccessTokenExpiresAt)
	return next, nil
}
