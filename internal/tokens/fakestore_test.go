package tokens_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// memStore is an in-memory tokens.Store and tokens.Leaser: maps behind a mutex,
// with copies in and out, a store-wide version counter for compare-and-set,
// code claims that expire by the store's clock, and refresh leases compared
// with the times they are given. TestMemStore runs the conformance suites
// against it, so the service's tests rely only on what every store does.
//
// Tests can run a write of their own just before the next PutLink
// (beforeNextPut), make AcquireLease fail (failLeases), and look at a user's
// lease (leaseOf).
type memStore struct {
	// now is the store's clock for code-claim expiry; set it before use.
	now func() time.Time
	// gets counts GetLink calls, so that tests can tell when callers have read.
	gets atomic.Int64

	mu        sync.Mutex
	links     map[string]*tokens.Link
	codes     map[string]codeClaim
	leases    map[string]memLease
	version   int64
	beforePut func()
	leaseErr  error

	// MemEvents keeps the events of the changes and their webhooks.
	storetest.MemEvents
}

var (
	_ tokens.Store       = (*memStore)(nil)
	_ tokens.Leaser      = (*memStore)(nil)
	_ tokens.EventStore  = (*memStore)(nil)
	_ tokens.LinkCounter = (*memStore)(nil)
	_ events.Store       = (*memStore)(nil)
)

// codeClaim is a code claimed by userID until expires.
type codeClaim struct {
	userID  string
	expires time.Time
}

// memLease is a refresh lease that owner holds until until.
type memLease struct {
	owner string
	until time.Time
}

func newMemStore() *memStore {
	return &memStore{
		now:    time.Now,
		links:  map[string]*tokens.Link{},
		codes:  map[string]codeClaim{},
		leases: map[string]memLease{},
	}
}

// storeOnly hides the Leaser of the store it holds: a store of one process,
// which needs no lease across processes.
type storeOnly struct{ tokens.Store }

func copyLink(l *tokens.Link) *tokens.Link {
	c := *l
	c.Tokens.Ciphertext = bytes.Clone(l.Tokens.Ciphertext)
	c.SkillID = tokens.DefaultSkillID // the one skill of this store
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

func (s *memStore) PutLink(ctx context.Context, link *tokens.Link, evs ...tokens.Event) error {
	if err := unavailable(ctx); err != nil {
		return err
	}
	if err := link.Validate(); err != nil {
		return err
	}
	if err := tokens.ValidateEvents(evs); err != nil {
		return err
	}
	s.mu.Lock()
	before := s.beforePut
	s.beforePut = nil
	s.mu.Unlock()
	if before != nil {
		before()
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
	s.Add(evs)
	return nil
}

// beforeNextPut makes the next PutLink run fn first, as if another writer came
// just before it; fn may write to the store itself, and may call beforeNextPut
// again to go on interfering.
func (s *memStore) beforeNextPut(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforePut = fn
}

func (s *memStore) DeleteLink(ctx context.Context, userID string, evs ...tokens.Event) error {
	if err := unavailable(ctx); err != nil {
		return err
	}
	if err := tokens.ValidateEvents(evs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.links[userID]; !ok {
		return fmt.Errorf("memstore: delete: %w", tokens.ErrLinkNotFound)
	}
	delete(s.links, userID)
	s.Add(evs)
	return nil
}

func (s *memStore) CountLinks(ctx context.Context) (map[tokens.State]int, error) {
	if err := unavailable(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[tokens.State]int{}
	for _, l := range s.links {
		counts[l.State]++
	}
	return counts, nil
}

func (s *memStore) ListLinks(ctx context.Context, cursor string, limit int) (tokens.LinkPage, error) {
	if err := unavailable(ctx); err != nil {
		return tokens.LinkPage{}, err
	}
	limit = tokens.PageSize(limit)
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
	if err := tokens.ValidateClaim(codeHash, userID); err != nil {
		return "", err
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

func (s *memStore) AcquireLease(ctx context.Context, userID, owner string, now, until time.Time) (bool, error) {
	if err := tokens.ValidateLease(userID, owner); err != nil {
		return false, err
	}
	if err := unavailable(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leaseErr != nil {
		return false, s.leaseErr
	}
	if l, ok := s.leases[userID]; ok && l.owner != owner && !l.until.Before(now) {
		return false, nil // another owner's lease stands
	}
	s.leases[userID] = memLease{owner: owner, until: until}
	return true, nil
}

func (s *memStore) ReleaseLease(ctx context.Context, userID, owner string) error {
	if err := unavailable(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[userID]; ok && l.owner == owner {
		delete(s.leases, userID)
	}
	return nil
}

// failLeases makes every AcquireLease fail with err until it is set to nil.
func (s *memStore) failLeases(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaseErr = err
}

// leaseOf returns the lease of userID, and whether there is one.
func (s *memStore) leaseOf(userID string) (memLease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[userID]
	return l, ok
}

// slowStore is a memStore whose link writes take latency, as a remote store's
// do; a write whose context ends first fails as a store's would, and is not
// carried out.
type slowStore struct {
	*memStore
	latency time.Duration
}

var _ tokens.Store = slowStore{}

func (s slowStore) PutLink(ctx context.Context, link *tokens.Link, evs ...tokens.Event) error {
	select {
	case <-time.After(s.latency):
	case <-ctx.Done():
		return unavailable(ctx)
	}
	return s.memStore.PutLink(ctx, link, evs...)
}

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokens.Store { return newMemStore() })
}

func TestMemStore_Events(t *testing.T) {
	storetest.RunEvents(t, func(t *testing.T) storetest.EventStore { return newMemStore() })
	storetest.RunWebhooks(t, func(t *testing.T) storetest.WebhookStore { return newMemStore() })
	storetest.RunLinkCounts(t, func(t *testing.T) storetest.LinkCountStore { return newMemStore() })
}

func TestMemStore_Leases(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) tokens.Leaser { return newMemStore() })
}
