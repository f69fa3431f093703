package events_test

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// fakeStore is an in-memory webhook outbox, for the deliverer's tests.
type fakeStore struct {
	mu       sync.Mutex
	webhooks map[string]*events.Webhook // by event id
	claims   map[string]fakeClaim       // by user
	claimed  int                        // ClaimWebhooks calls that took a claim
	// hidden lists a webhook in DueWebhooks only from its time on, as a
	// lagging index does; by event id.
	hidden map[string]time.Time
}

type fakeClaim struct {
	owner string
	until time.Time
}

var _ events.Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{webhooks: map[string]*events.Webhook{}, claims: map[string]fakeClaim{}}
}

// add stores evs as PENDING webhooks.
func (s *fakeStore) add(evs ...tokens.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		e.Notify = true
		s.webhooks[e.ID] = &events.Webhook{Event: e, State: events.StatePending, Version: 1}
	}
}

// get returns a copy of the webhook of event id.
func (s *fakeStore) get(id string) events.Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.webhooks[id]
}

func before(a, b *events.Webhook) int {
	return cmp.Or(a.Event.OccurredAt.Compare(b.Event.OccurredAt), cmp.Compare(a.Event.ID, b.Event.ID))
}

func (s *fakeStore) DueWebhooks(_ context.Context, now time.Time, limit int) ([]*events.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	oldest := map[string]*events.Webhook{}
	for _, w := range s.webhooks {
		if w.State != events.StatePending || time.Now().Before(s.hidden[w.Event.ID]) {
			continue
		}
		if o, ok := oldest[w.Event.UserID]; !ok || before(w, o) < 0 {
			oldest[w.Event.UserID] = w
		}
	}
	var due []*events.Webhook
	for _, w := range oldest {
		if !w.NextAttemptAt.After(now) {
			c := *w
			due = append(due, &c)
		}
	}
	slices.SortFunc(due, before)
	return due[:min(len(due), tokens.PageSize(limit))], nil
}

func (s *fakeStore) ClaimWebhooks(_ context.Context, userID, owner string, now, until time.Time) (bool, error) {
	if userID == "" || owner == "" {
		return false, tokens.Errorf(tokens.EINVALID, "empty user or owner")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[userID]; ok && c.owner != owner && !c.until.Before(now) {
		return false, nil
	}
	s.claims[userID] = fakeClaim{owner: owner, until: until}
	s.claimed++
	return true, nil
}

func (s *fakeStore) ReleaseWebhooks(_ context.Context, userID, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[userID]; ok && c.owner == owner {
		delete(s.claims, userID)
	}
	return nil
}

func (s *fakeStore) PutWebhook(_ context.Context, w *events.Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.webhooks[w.Event.ID]
	if !ok {
		return events.ErrWebhookNotFound
	}
	if cur.Version != w.Version || cur.State != events.StatePending {
		return events.ErrVersionConflict
	}
	w.Version++
	c := *w
	s.webhooks[w.Event.ID] = &c
	return nil
}

func (s *fakeStore) WebhookBacklog(context.Context) (int, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, oldest := 0, time.Time{}
	for _, w := range s.webhooks {
		if w.State == events.StatePending {
			n++
			if oldest.IsZero() || w.Event.OccurredAt.Before(oldest) {
				oldest = w.Event.OccurredAt
			}
		}
	}
	return n, oldest, nil
}
