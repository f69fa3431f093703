package tokens_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// fakeClock is a clock that moves only when told to. Its Now is what tests put
// into Service.Now, fakeLWA.now and memStore.now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock(start time.Time) *fakeClock { return &fakeClock{now: start} }

// Now returns the clock's current time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// memStore is an in-memory tokens.Store: a map behind a mutex, with copies in
// and out, a store-wide version counter for compare-and-set, and code claims
// that expire by the store's clock. TestMemStore runs the store conformance
// suite against it, so the service's tests rely only on what every store does.
type memStore struct {
	// now is the store's clock for code-claim expiry; set it before use.
	now func() time.Time
	// gets counts GetLink calls, so that tests can tell when callers have read.
	gets atomic.Int64

	mu      sync.Mutex
	links   map[string]*tokens.Link
	codes   map[string]codeClaim
	version int64
}

var _ tokens.Store = (*memStore)(nil)

type codeClaim struct {
	userID  string
	expires time.Time
}

// memDefaultLimit is ListLinks' page size for a limit of zero or less.
const memDefaultLimit = 100

func newMemStore() *memStore {
	return &memStore{
		now:   time.Now,
		links: map[string]*tokens.Link{},
		codes: map[string]codeClaim{},
	}
}

func copyLink(l *tokens.Link) *tokens.Link {
	c := *l
	c.Tokens.Ciphertext = bytes.Clone(l.Tokens.Ciphertext)
	return &c
}

// unavailable returns the store's answer to a context that has ended.
func unavailable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return tokens.Errorf(tokens.EUNAVAILABLE, "memstore: %v", err)
	}
	return nil
}

func (s *memStore) GetLink(ctx context.Context, userID string) (*tokens.Link, error) {
	s.gets.Add(1)
	if err := unavailable(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[userID]
	if !ok {
		return nil, fmt.Errorf("memstore: get: %w", tokens.ErrLinkNotFound)
	}
	return copyLink(l), nil
}

func (s *memStore) PutLink(ctx context.Context, link *tokens.Link) error {
	if err := unavailable(ctx); err != nil {
		return err
	}
	if err := link.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var stored int64
	if cur, ok := s.links[link.UserID]; ok {
		stored = cur.Version
	}
	if stored != link.Version {
		return fmt.Errorf("memstore: put version %d over %d: %w", link.Version, stored, tokens.ErrVersionConflict)
	}
	s.version++
	c := copyLink(link)
	c.Version = s.version
	s.links[link.UserID] = c
	link.Version = s.version
	return nil
}

func (s *memStore) DeleteLink(ctx context.Context, userID string) error {
	if err := unavailable(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.links[userID]; !ok {
		return fmt.Errorf("memstore: delete: %w", tokens.ErrLinkNotFound)
	}
	delete(s.links, userID)
	return nil
}

func (s *memStore) ListLinks(ctx context.Context, cursor string, limit int) (tokens.LinkPage, error) {
	if err := unavailable(ctx); err != nil {
		return tokens.LinkPage{}, err
	}
	if limit <= 0 {
		limit = memDefaultLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.links))
	for id := range s.links {
		ids = append(ids, id)
	}
	slices.Sort(ids) // Go strings compare as bytes
	i := sort.SearchStrings(ids, cursor)
	if i < len(ids) && ids[i] == cursor {
		i++
	}
	var page tokens.LinkPage
	for ; i < len(ids) && len(page.Links) < limit; i++ {
		page.Links = append(page.Links, copyLink(s.links[ids[i]]))
	}
	if i < len(ids) {
		page.Next = ids[i-1]
	}
	return page, nil
}

func (s *memStore) ClaimCode(ctx context.Context, codeHash, userID string, expires time.Time) (string, error) {
	switch {
	case codeHash == "":
		return "", tokens.Errorf(tokens.EINVALID, "memstore: no code hash to claim")
	case userID == "":
		return "", tokens.Errorf(tokens.EINVALID, "memstore: no user id to claim the code for")
	}
	if err := unavailable(ctx); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.codes[codeHash]; ok && !c.expires.Before(s.now()) {
		return c.userID, nil
	}
	s.codes[codeHash] = codeClaim{userID: userID, expires: expires}
	return userID, nil
}

func (s *memStore) Ping(ctx context.Context) error { return unavailable(ctx) }

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
	// refreshes waiting for blockRefresh's release.
	exchanges, refreshes, blocked atomic.Int64

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
	f.refresh[g.RefreshToken.Reveal()] = subject
	f.issued = append(f.issued, g.AccessToken.Reveal(), g.RefreshToken.Reveal())
	f.last = g
	return g
}

func (f *fakeLWA) Exchange(ctx context.Context, code tokens.Secret) (tokens.Grant, error) {
	f.exchanges.Add(1)
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

// syncBuffer is a bytes.Buffer safe for concurrent use: the service logs from
// background goroutines while tests read what it logged.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

var _ io.Writer = (*syncBuffer)(nil)

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
