package tokens

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of a Service's settings.
const (
	DefaultRefreshAhead = 5 * time.Minute
	// codeClaimTTL is how long a used authorization code stays bound to its user.
	// LWA codes live five minutes; an hour covers Alexa's retries with room.
	codeClaimTTL = time.Hour
	// refreshTimeout bounds one refresh with LWA, whoever waits for it.
	refreshTimeout = 20 * time.Second
	// leaseTTL is how long a refresh lease lasts: longer than a refresh may
	// take, so that only a crashed holder's lease runs out.
	leaseTTL = refreshTimeout + 10*time.Second
	// leasePoll is how often a process waiting for another's refresh re-reads.
	leasePoll = 25 * time.Millisecond
	// maxWriteAttempts bounds compare-and-set retries on version conflicts.
	maxWriteAttempts = 8
)

// Token is an LWA access token handed to the companion backend.
type Token struct {
	AccessToken Secret
	ExpiresAt   time.Time
}

// Service is the broker's token logic: it exchanges Alexa's authorization codes,
// keeps each user's tokens sealed in the Store, and hands out access tokens that
// stay valid for at least RefreshAhead, refreshing them first when needed. At
// most one refresh per user is in flight in the process; the store's version
// check keeps concurrent writers from losing a rotated refresh token.
type Service struct {
	store  Store
	sealer Sealer
	lwa    Exchanger

	// RefreshAhead is how long before expiry a token is refreshed.
	RefreshAhead time.Duration
	// Now returns the current time; tests set it to move time without sleeping.
	Now func() time.Time
	// Logger receives refresh outcomes; it never receives a secret.
	Logger *slog.Logger

	flight singleflight.Group
	usage  usage
	// owner names this Service when it holds refresh leases.
	owner string
}

// NewService returns a Service over a store, a sealer and an LWA client.
func NewService(store Store, sealer Sealer, lwa Exchanger) *Service {
	return &Service{
		store: store, sealer: sealer, lwa: lwa,
		RefreshAhead: DefaultRefreshAhead,
		Now:          time.Now,
		Logger:       slog.New(slog.DiscardHandler),
		usage:        usage{users: map[string]use{}},
		owner:        newOwner(),
	}
}

// newOwner returns a random name for this process's refresh leases.
func newOwner() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tokensFormat is the first byte of the plaintext that Link.Tokens seals; the
// access and refresh tokens follow, each as uvarint-length-prefixed bytes. A
// binary form, since it is opened on every partner-token call.
const tokensFormat byte = 1

func (s *Service) seal(userID string, g Grant) (Sealed, error) {
	a, r := g.AccessToken.Reveal(), g.RefreshToken.Reveal()
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(a)+len(r))
	b = append(b, tokensFormat)
	b = append(binary.AppendUvarint(b, uint64(len(a))), a...)
	b = append(binary.AppendUvarint(b, uint64(len(r))), r...)
	sealed, err := s.sealer.Seal(userID, b)
	clear(b)
	if err != nil {
		return Sealed{}, fmt.Errorf("seal tokens: %w", err)
	}
	return sealed, nil
}

func (s *Service) open(l *Link) (Grant, error) {
	b, err := s.sealer.Open(l.UserID, l.Tokens)
	if err != nil {
		return Grant{}, fmt.Errorf("open tokens of link: %w", err)
	}
	defer clear(b)
	if len(b) == 0 || b[0] != tokensFormat {
		return Grant{}, Errorf(EINTERNAL, "sealed tokens have an unknown format")
	}
	var fields [2]string
	rest := b[1:]
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return Grant{}, Errorf(EINTERNAL, "sealed tokens are truncated")
		}
		fields[i], rest = string(rest[k:k+int(n)]), rest[k+int(n):]
	}
	return Grant{AccessToken: Secret(fields[0]), RefreshToken: Secret(fields[1]), Expiry: l.AccessTokenExpiresAt}, nil
}

// CodeHash returns the identifier under which an authorization code is
// remembered: a hash, so that the code itself is never stored.
func CodeHash(code Secret) string {
	h := sha256.Sum256([]byte("reciprocal-broker/code/v1\x00" + code.Reveal()))
	return hex.EncodeToString(h[:16])
}

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

// write applies change to the stored link of userID (nil when there is none)
// and stores the result with a compare-and-set, re-reading and re-applying on
// version conflicts. change returns nil to leave the store as it is.
func (s *Service) write(ctx context.Context, userID string, change func(*Link) (*Link, error)) (*Link, error) {
	for range maxWriteAttempts {
		current, err := s.store.GetLink(ctx, userID)
		if errors.Is(err, ErrLinkNotFound) {
			current, err = nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read link: %w", err)
		}
		next, err := change(current)
		if err != nil || next == nil {
			return current, err
		}
		err = s.store.PutLink(ctx, next)
		if errors.Is(err, ErrVersionConflict) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write link: %w", err)
		}
		return next, nil
	}
	return nil, Errorf(EUNAVAILABLE, "link of user is changing too often; try again")
}

// Token returns an access token of userID that stays valid for at least
// RefreshAhead, refreshing it with LWA first when needed. Concurrent callers for
// one user share one refresh.
//
// It returns ErrLinkNotFound when the user has no link, an ERELINK error when
// the user must link the skill again, and an EUNAVAILABLE error when LWA or the
// store cannot be reached within ctx's deadline (the link stays as it was).
func (s *Service) Token(ctx context.Context, userID string) (Token, error) {
	l, err := s.store.GetLink(ctx, userID)
	if err != nil {
		return Token{}, err
	}
	if l.State == StateRelinkRequired {
		return Token{}, errRelink
	}
	now := s.Now()
	if !s.fresh(l, now) {
		if l, err = s.refresh(ctx, userID, s.RefreshAhead); err != nil {
			return Token{}, err
		}
	}
	g, err := s.open(l)
	if err != nil {
		return Token{}, err
	}
	s.usage.touch(userID, now, l.AccessTokenExpiresAt)
	return Token{AccessToken: g.AccessToken, ExpiresAt: l.AccessTokenExpiresAt}, nil
}

var errRelink = &Error{Code: ERELINK, Message: "the user must link the skill again"}

// fresh reports whether l's access token stays valid for RefreshAhead from now.
func (s *Service) fresh(l *Link, now time.Time) bool {
	return l.AccessTokenExpiresAt.Sub(now) > s.RefreshAhead
}

// Refresh refreshes userID's tokens with LWA now, even when they are fresh, and
// returns the updated link. Errors are as for Token.
func (s *Service) Refresh(ctx context.Context, userID string) (*Link, error) {
	return s.refresh(ctx, userID, math.MaxInt64)
}

// refresh runs one refresh of userID at a time in this process: callers that
// arrive meanwhile wait for its result, each within its own deadline. The
// refresh itself is not cut short by one impatient caller.
func (s *Service) refresh(ctx context.Context, userID string, ahead time.Duration) (*Link, error) {
	ch := s.flight.DoChan("refresh\x00"+userID, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		return s.doRefresh(rctx, userID, ahead)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Link), nil
	case <-ctx.Done():
		return nil, Errorf(EUNAVAILABLE, "Login with Amazon did not answer in time")
	}
}

// doRefresh refreshes userID's tokens unless another refresh made them fresh
// meanwhile, and writes a rotated refresh token before anything else is done
// with LWA's answer.
func (s *Service) doRefresh(ctx context.Context, userID string, ahead time.Duration) (*Link, error) {
	start := s.Now()
	l, err := s.store.GetLink(ctx, userID)
	if err != nil {
		return nil, err
	}
	if l.State == StateRelinkRequired {
		return nil, errRelink
	}
	if l.AccessTokenExpiresAt.Sub(start) > ahead {
		return l, nil // refreshed by someone else since the caller looked
	}
	if leaser, ok := s.store.(Leaser); ok {
		var done bool
		l, done, err = s.lease(ctx, leaser, userID, ahead)
		if err != nil || done {
			return l, err
		}
		defer leaser.ReleaseLease(context.WithoutCancel(ctx), userID, s.owner)
	}
	old, err := s.open(l)
	if err != nil {
		return nil, err
	}
	grant, err := s.lwa.Refresh(ctx, old.RefreshToken)
	if errors.Is(err, ErrInvalidGrant) {
		s.Logger.Warn("LWA refused the refresh token; link needs re-linking", "user_id", userID)
		cur, werr := s.write(ctx, userID, func(cur *Link) (*Link, error) {
			if cur == nil || cur.Version != l.Version {
				return nil, nil // changed meanwhile (re-linked or deleted): leave it
			}
			next := *cur
			next.State = StateRelinkRequired
			return &next, nil
		})
		switch {
		case werr != nil:
			return nil, werr
		case cur == nil:
			return nil, ErrLinkNotFound
		case cur.Version != l.Version && cur.State == StateLinked:
			return cur, nil // re-linked or refreshed meanwhile: the refused token is not its own
		}
		return nil, errRelink
	}
	if err != nil {
		s.Logger.Warn("refresh failed", "user_id", userID, "err", err.Error())
		return nil, fmt.Errorf("refresh tokens: %w", err)
	}
	if grant.RefreshToken == "" {
		grant.RefreshToken = old.RefreshToken // LWA did not rotate it
	}
	now := s.Now()
	var lost bool
	next, err := s.write(ctx, userID, func(cur *Link) (*Link, error) {
		if cur == nil || cur.CodeHash != l.CodeHash {
			lost = true
			return nil, nil // deleted or re-linked meanwhile: this grant is of an older link
		}
		if cur.Version != l.Version {
			// Somebody wrote since we read. Ours is the newest token LWA issued
			// from the refresh token we used, unless that token changed.
			if g, err := s.open(cur); err != nil || g.RefreshToken != old.RefreshToken {
				lost = true
				return nil, err
			}
		}
		sealed, err := s.seal(userID, grant)
		if err != nil {
			return nil, err
		}
		n := *cur
		n.State, n.Tokens = StateLinked, sealed
		n.AccessTokenExpiresAt, n.LastRefreshedAt = grant.Expiry, now
		return &n, nil
	})
	if err != nil {
		return nil, err
	}
	if lost {
		if next == nil {
			return nil, ErrLinkNotFound
		}
		if next.State == StateRelinkRequired {
			return nil, errRelink
		}
		return next, nil
	}
	s.Logger.Info("refreshed tokens", "user_id", userID, "expires_at", next.AccessTokenExpiresAt)
	return next, nil
}

// RequireRelink marks userID's link RELINK_REQUIRED, as when Alexa answers that
// the skill was disabled or its permission withdrawn: no LWA call is made for
// the user until Alexa hands over a new code. It returns ErrLinkNotFound when
// the user has no link.
func (s *Service) RequireRelink(ctx context.Context, userID string) error {
	l, err := s.write(ctx, userID, func(cur *Link) (*Link, error) {
		if cur == nil {
			return nil, ErrLinkNotFound
		}
		if cur.State == StateRelinkRequired {
			return nil, nil
		}
		next := *cur
		next.State = StateRelinkRequired
		return &next, nil
	})
	if err != nil {
		return err
	}
	s.usage.forget(l.UserID)
	return nil
}

// lease takes userID's refresh lease across processes. While another process
// holds it, lease waits for that process's result by re-reading the link, and
// returns it with done true once it is fresh for ahead. With the lease held, it
// returns the link as read after taking it (done false): the caller refreshes.
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

// Link returns userID's link, or ErrLinkNotFound.
func (s *Service) Link(ctx context.Context, userID string) (*Link, error) {
	return s.store.GetLink(ctx, userID)
}

// Links returns a page of links ordered by user id; see Store.ListLinks.
func (s *Service) Links(ctx context.Context, cursor string, limit int) (LinkPage, error) {
	return s.store.ListLinks(ctx, cursor, limit)
}

// Delete removes userID's link and its tokens, or returns ErrLinkNotFound.
func (s *Service) Delete(ctx context.Context, userID string) error {
	if err := s.store.DeleteLink(ctx, userID); err != nil {
		return err
	}
	s.usage.forget(userID)
	return nil
}

// usage remembers which users asked for a token recently, and when their token
// expires, so that background refresh touches only links in use.
type usage struct {
	mu    sync.Mutex
	users map[string]use
}

type use struct{ last, expires time.Time }

func (u *usage) touch(userID string, at, expires time.Time) {
	u.mu.Lock()
	u.users[userID] = use{last: at, expires: expires}
	u.mu.Unlock()
}

// expires records a new expiry of a user's token without counting it as a use.
func (u *usage) expires(userID string, at time.Time) {
	u.mu.Lock()
	if x, ok := u.users[userID]; ok {
		x.expires = at
		u.users[userID] = x
	}
	u.mu.Unlock()
}

func (u *usage) forget(userID string) {
	u.mu.Lock()
	delete(u.users, userID)
	u.mu.Unlock()
}

// due returns the users asked for since usedSince whose token expires before
// expiresBefore, and forgets those not asked for since usedSince.
func (u *usage) due(usedSince, expiresBefore time.Time) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var due []string
	for id, x := range u.users {
		switch {
		case x.last.Before(usedSince):
			delete(u.users, id)
		case x.expires.Before(expiresBefore):
			due = append(due, id)
		}
	}
	return due
}

// RefreshInBackground keeps the tokens of users who asked for one within window
// fresh ahead of use until ctx ends: every interval it refreshes, spread with
// jitter over the interval, the links that would otherwise need an on-demand
// refresh before the next round. It shares the per-user refresh with callers,
// so it never runs beside an on-demand refresh of the same user. Idle links
// cost nothing.
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
				l, err := s.refresh(ctx, userID, horizon)
				if err == nil {
					s.usage.expires(userID, l.AccessTokenExpiresAt)
				}
				if err != nil {
					s.Logger.Warn("background refresh failed", "user_id", userID, "err", err.Error())
					if c := ErrorCode(err); c == ERELINK || c == ENOTFOUND {
						s.usage.forget(userID)
					}
				}
			}()
		}
	}
}
