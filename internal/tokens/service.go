package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"
)

// DefaultRefreshAhead is a Service's RefreshAhead unless it is set.
const DefaultRefreshAhead = 5 * time.Minute

// maxWriteAttempts bounds compare-and-set retries on version conflicts.
const maxWriteAttempts = 8

// Token is an LWA access token handed to the companion backend.
type Token struct {
	AccessToken Secret
	ExpiresAt   time.Time
}

// Service is the broker's token logic: it exchanges Alexa's authorization codes,
// keeps each user's tokens sealed in the Store, and hands out access tokens that
// stay valid for at least RefreshAhead, refreshing them first when needed. At
// most one refresh per user is in flight in the process, and, when the store is
// a Leaser, across processes; the store's version check keeps concurrent writers
// from losing a rotated refresh token. A Service is safe for concurrent use once
// its fields are set.
type Service struct {
	store  Store
	sealer Sealer
	lwa    Exchanger

	// SkillID is the skill whose links the Service keeps (those of its Store,
	// through its LWA credentials): it stamps the events it records and binds
	// the sealed tokens. NewService sets DefaultSkillID.
	SkillID string
	// RefreshAhead is how long before expiry a token is refreshed.
	RefreshAhead time.Duration
	// Now returns the current time; tests set it to move time without sleeping.
	Now func() time.Time
	// Logger receives refresh outcomes; it never receives a secret.
	Logger *slog.Logger
	// Notify decides which of the events the Service records are also sent
	// to the webhook (Event.Notify); nil sends none.
	Notify NotifySet
	// EventObserver is told of every event the Service stored with a change
	// of a link; nil observes nothing.
	EventObserver EventObserver

	flight singleflight.Group
	usage  usage
	opened openedTokens // the access tokens Token opened (see opened.go)
	work   *inflight
	// owner names this Service when it holds refresh leases.
	owner string
}

// NewService returns a Service over a store, a sealer and an LWA client.
func NewService(store Store, sealer Sealer, lwa Exchanger) *Service {
	return &Service{
		store: store, sealer: sealer, lwa: lwa,
		SkillID:      DefaultSkillID,
		RefreshAhead: DefaultRefreshAhead,
		Now:          time.Now,
		Logger:       slog.New(slog.DiscardHandler),
		usage:        usage{users: map[string]use{}},
		work:         newInflight(),
		owner:        newOwner(),
	}
}

// Token returns an access token of userID that stays valid for at least
// RefreshAhead (or, when LWA issues tokens that live less than twice that long,
// for half their lifetime), refreshing it with LWA first when needed. It never
// returns an expired token. Concurrent callers for one user share one refresh.
//
// It returns ErrLinkNotFound when the user has no link, an ERELINK error when
// the user must link the skill again, and an EUNAVAILABLE error when LWA or the
// store cannot be reached within ctx's deadline (the link stays as it was), when
// LWA issued a token that has expired already, or when the Service is closed
// and the token needs a refresh.
func (s *Service) Token(ctx context.Context, userID string) (Token, error) {
	l, err := s.store.GetLink(ctx, userID)
	if err != nil {
		return Token{}, err
	}
	if l.State == StateRelinkRequired {
		return Token{}, errRelink
	}
	if !s.fresh(l, s.Now()) {
		if l, err = s.refresh(ctx, userID, s.refreshWindow(l), byCaller); err != nil {
			return Token{}, err
		}
	}
	now := s.Now()
	if !l.AccessTokenExpiresAt.After(now) {
		s.Logger.Warn("LWA issued an access token that has expired already", "user_id", userID, "expires_at", l.AccessTokenExpiresAt)
		return Token{}, Errorf(EUNAVAILABLE, "Login with Amazon issued an access token that has expired already; try again")
	}
	access, ok := s.opened.get(userID, l.Tokens)
	if !ok {
		g, err := s.open(l)
		if err != nil {
			return Token{}, err
		}
		access = g.AccessToken
		s.opened.put(userID, l.Tokens, access)
	}
	s.usage.touch(userID, now, l.AccessTokenExpiresAt)
	return Token{AccessToken: access, ExpiresAt: l.AccessTokenExpiresAt}, nil
}

// fresh reports whether l's access token stays valid beyond its refresh
// window from now.
func (s *Service) fresh(l *Link, now time.Time) bool {
	return l.AccessTokenExpiresAt.Sub(now) > s.refreshWindow(l)
}

// refreshWindow is how long before l's access token expires it is refreshed:
// RefreshAhead, or half the token's lifetime when that is shorter, so that a
// token LWA issued short-lived is not refreshed on every call.
func (s *Service) refreshWindow(l *Link) time.Duration {
	life := l.AccessTokenExpiresAt.Sub(l.LastRefreshedAt)
	return min(s.RefreshAhead, max(life/2, 0))
}

// Link returns userID's link, or ErrLinkNotFound.
func (s *Service) Link(ctx context.Context, userID string) (*Link, error) {
	return s.store.GetLink(ctx, userID)
}

// Delete removes userID's link and its tokens, and records a link.deleted
// event of by.Actor with by.Reason (ReasonOperator when empty). It returns
// ErrLinkNotFound when the user has no link, and an EINVALID error when
// by.Actor is empty.
func (s *Service) Delete(ctx context.Context, userID string, by Deletion) error {
	if by.Actor == "" {
		return Errorf(EINVALID, "the deletion has no actor")
	}
	if by.Reason == "" {
		by.Reason = ReasonOperator
	}
	events := []Event{s.event(EventDeleted, userID, by.Actor, map[string]any{"reason": by.Reason})}
	s.Notify.Mark(events)
	if err := s.store.DeleteLink(ctx, userID, events...); err != nil {
		return err
	}
	ObserveStored(s.EventObserver, events...)
	s.usage.forget(userID)
	return nil
}

// write applies change to the stored link of userID (nil when there is none)
// and stores the result, with the events change returns, with a
// compare-and-set, re-reading and re-applying on version conflicts. change
// returns nil to leave the store as it is; write then returns the link as
// read.
func (s *Service) write(ctx context.Context, userID string, change func(*Link) (*Link, []Event, error)) (*Link, error) {
	for range maxWriteAttempts {
		current, err := s.store.GetLink(ctx, userID)
		if errors.Is(err, ErrLinkNotFound) {
			current, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read link: %w", err)
		}
		next, events, err := change(current)
		if err != nil || next == nil {
			return current, err
		}
		s.Notify.Mark(events)
		err = s.store.PutLink(ctx, next, events...)
		if errors.Is(err, ErrVersionConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write link: %w", err)
		}
		ObserveStored(s.EventObserver, events...)
		return next, nil
	}
	return nil, Errorf(EUNAVAILABLE, "link of user is changing too often; try again")
}

// event returns a new event of the Service's skill, made now.
func (s *Service) event(typ EventType, userID, actor string, data map[string]any) Event {
	e := NewEvent(typ, userID, actor, s.Now(), data)
	e.SkillID = s.SkillID
	return e
}
