package tokens_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// fakeLWA is a tokens.Exchanger that behaves like Login with Amazon: it knows
// the authorization codes it issued, each good for one exchange; every refresh
// returns a new refresh token and invalidates the one used (unless rotation is
// turned off); anything it does not know, or no longer honours, is
// invalid_grant. Access tokens expire ttl after its clock's now.
//
// Tests can make the next calls fail (setExchangeErr, setRefreshErr), revoke a
// subject's refresh tokens, and hold refreshes until released (blockRefresh).
// Every code and token it issues is remembered, so that tests can check that
// none of them shows up in logs or error messages.
type fakeLWA struct {
	// now and ttl make access-token expiries; set them before use.
	now func() time.Time
	ttl time.Duration

	// exchanges and refreshes count calls, failed ones included; blocked counts
	// refreshes waiting for blockRefresh's release, held the answers waiting for
	// holdAnswers' release.
	exchanges, refreshes, blocked, held atomic.Int64

	mu           sync.Mutex
	seq          int
	codes        map[string]*fakeCode // by code
	refresh      map[string]string    // valid refresh token → subject
	refreshesOf  map[string]int       // successful refreshes by subject
	issued       []string             // every code and token handed out
	last         tokens.Grant         // the last grant issued, rotated refresh token included
	exchangeErr  error
	refreshErr   error
	noRotate     bool
	refreshBlock chan struct{}
	answerHold   chan struct{}
	delay        time.Duration
	expiresIn    *time.Duration
}

var _ tokens.Exchanger = (*fakeLWA)(nil)

type fakeCode struct {
	subject string
	used    bool
}

func newFakeLWA(now func() time.Time, ttl time.Duration) *fakeLWA {
	return &fakeLWA{
		now: now, ttl: ttl,
		codes:       map[string]*fakeCode{},
		refresh:     map[string]string{},
		refreshesOf: map[string]int{},
	}
}

// newCode returns an authorization code that LWA will exchange once, for
// subject (LWA's side of the user).
func (f *fakeLWA) newCode(subject string) tokens.Secret {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	code := fmt.Sprintf("ANfakecode%06d", f.seq)
	f.codes[code] = &fakeCode{subject: subject}
	f.issued = append(f.issued, code)
	return tokens.Secret(code)
}

// grant issues new tokens for subject; f.mu is held.
func (f *fakeLWA) grant(subject string) tokens.Grant {
	f.seq++
	g := tokens.Grant{
		AccessToken:  tokens.Secret(fmt.Sprintf("Atza|fake-access-%06d", f.seq)),
		RefreshToken: tokens.Secret(fmt.Sprintf("Atzr|fake-refresh-%06d", f.seq)),
		Expiry:       f.now().Add(f.ttl),
	}
	if f.expiresIn != nil {
		g.Expiry = f.now().Add(*f.expiresIn)
	}
	f.refresh[g.RefreshToken.Reveal()] = subject
	f.issued = append(f.issued, g.AccessToken.Reveal(), g.RefreshToken.Reveal())
	f.last = g
	return g
}

func (f *fakeLWA) Exchange(ctx context.Context, code tokens.Secret) (tokens.Grant, error) {
	f.exchanges.Add(1)
	g, err := f.exchange(code)
	return f.answer(ctx, g, err)
}

func (f *fakeLWA) exchange(code tokens.Secret) (tokens.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exchangeErr != nil {
		return tokens.Grant{}, f.exchangeErr
	}
	c, ok := f.codes[code.Reveal()]
	if !ok || c.used {
		return tokens.Grant{}, fmt.Errorf("fake lwa: exchange: %w", tokens.ErrInvalidGrant)
	}
	c.used = true
	return f.grant(c.subject), nil
}

// answer returns LWA's answer, carried out already, after the delay and while
// holdAnswers holds it; a caller whose ctx ends meanwhile gets no answer, as
// when LWA's answer comes too late.
func (f *fakeLWA) answer(ctx context.Context, g tokens.Grant, err error) (tokens.Grant, error) {
	f.mu.Lock()
	hold, delay := f.answerHold, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return tokens.Grant{}, tokens.Errorf(tokens.EUNAVAILABLE, "fake lwa: %v", ctx.Err())
		}
	}
	if hold != nil {
		f.held.Add(1)
		defer f.held.Add(-1)
		select {
		case <-hold:
		case <-ctx.Done():
			return tokens.Grant{}, tokens.Errorf(tokens.EUNAVAILABLE, "fake lwa: %v", ctx.Err())
		}
	}
	return g, err
}

func (f *fakeLWA) Refresh(ctx context.Context, refreshToken tokens.Secret) (tokens.Grant, error) {
	f.refreshes.Add(1)
	f.mu.Lock()
	block := f.refreshBlock
	f.mu.Unlock()
	if block != nil {
		f.blocked.Add(1)
		select {
		case <-block:
			f.blocked.Add(-1)
		case <-ctx.Done():
			f.blocked.Add(-1)
			return tokens.Grant{}, tokens.Errorf(tokens.EUNAVAILABLE, "fake lwa: %v", ctx.Err())
		}
	}

	g, err := f.rotate(refreshToken)
	return f.answer(ctx, g, err)
}

func (f *fakeLWA) rotate(refreshToken tokens.Secret) (tokens.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refreshErr != nil {
		return tokens.Grant{}, f.refreshErr
	}
	subject, ok := f.refresh[refreshToken.Reveal()]
	if !ok {
		return tokens.Grant{}, fmt.Errorf("fake lwa: refresh: %w", tokens.ErrInvalidGrant)
	}
	f.refreshesOf[subject]++
	if f.noRotate {
		g := f.grant(subject)
		delete(f.refresh, g.RefreshToken.Reveal())
		g.RefreshToken = "" // LWA sent no refresh_token: the old one stays good
		f.last = g
		return g, nil
	}
	delete(f.refresh, refreshToken.Reveal())
	return f.grant(subject), nil
}

// setExchangeErr makes every Exchange fail with err until it is set to nil.
func (f *fakeLWA) setExchangeErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exchangeErr = err
}

// setRefreshErr makes every Refresh fail with err until it is set to nil.
func (f *fakeLWA) setRefreshErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshErr = err
}

// setRotate turns refresh-token rotation on (the default) or off.
func (f *fakeLWA) setRotate(rotate bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noRotate = !rotate
}

// revoke invalidates every refresh token of subject, as when the user
// withdrew the skill's permission.
func (f *fakeLWA) revoke(subject string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for rt, s := range f.refresh {
		if s == subject {
			delete(f.refresh, rt)
		}
	}
}

// blockRefresh makes refreshes wait, after they are counted and before they
// look at their refresh token, until release is called (or their context
// ends). release may be called more than once.
func (f *fakeLWA) blockRefresh() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.refreshBlock = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.refreshBlock = nil
			f.mu.Unlock()
			close(ch)
		})
	}
}

// holdAnswers makes exchanges and refreshes wait after LWA has carried them
// out (the code used, the refresh token rotated) and before they answer, until
// release is called or their context ends: LWA's answer is on its way. release
// may be called more than once.
func (f *fakeLWA) holdAnswers() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.answerHold = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.answerHold = nil
			f.mu.Unlock()
			close(ch)
		})
	}
}

// setDelay makes every exchange and refresh answer d after LWA carried it out.
func (f *fakeLWA) setDelay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

// setExpiresIn makes the grants issued from now on expire d after they are
// issued, whatever ttl says, as when LWA sends an odd expires_in; d may be
// zero or negative.
func (f *fakeLWA) setExpiresIn(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expiresIn = &d
}

// lastGrant returns the last grant LWA issued, with the refresh token as sent
// ("" when rotation is off).
func (f *fakeLWA) lastGrant() tokens.Grant {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// subjectRefreshes returns how many refreshes succeeded for subject.
func (f *fakeLWA) subjectRefreshes(subject string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshesOf[subject]
}

// secrets returns every code, access token and refresh token issued so far.
func (f *fakeLWA) secrets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.issued)
}
