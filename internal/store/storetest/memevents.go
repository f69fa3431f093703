package storetest

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// MemEvents is an in-memory audit trail and webhook outbox (tokens.EventStore
// and events.Store) for the hand-written fakes of the stores: a fake calls
// Add with a change's events while it makes the change, under its own lock.
// The fakes' conformance suites hold it to what every store does. The zero
// value is ready for use.
type MemEvents struct {
	mu      sync.Mutex
	events  map[string]tokens.Event
	hooks   map[string]*events.Webhook
	claims  map[string]memClaim
	version int64
}

// memClaim is a user's webhook claim.
type memClaim struct {
	owner string
	until time.Time
}

var (
	_ tokens.EventStore = (*MemEvents)(nil)
	_ events.Store      = (*MemEvents)(nil)
)

// Add stores evs, and a PENDING webhook of each with Notify set; an event
// whose id is stored already is left as it is. The caller has checked them
// with tokens.ValidateEvents.
func (m *MemEvents) Add(evs []tokens.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events == nil {
		m.events, m.hooks = map[string]tokens.Event{}, map[string]*events.Webhook{}
	}
	for _, e := range evs {
		if _, ok := m.events[e.ID]; ok {
			continue
		}
		e.Data = maps.Clone(e.Data)
		m.events[e.ID] = e
		if e.Notify {
			m.version++
			m.hooks[e.ID] = &events.Webhook{Event: e, State: events.StatePending, Version: m.version}
		}
	}
}

// Events returns every stored event, oldest first (by OccurredAt, then ID),
// for the fakes' own tests.
func (m *MemEvents) Events() []tokens.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := make([]tokens.Event, 0, len(m.events))
	for _, e := range m.events {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b tokens.Event) int { return newer(b, a) })
	return all
}

func memUnavailable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return tokens.Errorf(tokens.EUNAVAILABLE, "memevents: %v", err)
	}
	return nil
}

// newer orders events newest first, by OccurredAt then ID.
func newer(a, b tokens.Event) int {
	return cmp.Or(b.OccurredAt.Compare(a.OccurredAt), strings.Compare(b.ID, a.ID))
}

// memCursor is the cursor of the page after e.
func memCursor(e tokens.Event) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d|%s", e.OccurredAt.UnixNano(), e.ID))
}

// ListEvents lists events as tokens.EventStore specifies.
func (m *MemEvents) ListEvents(ctx context.Context, filter tokens.EventFilter, cursor string, limit int) (tokens.EventPage, error) {
	if err := memUnavailable(ctx); err != nil {
		return tokens.EventPage{}, err
	}
	if filter.Type != "" {
		if err := filter.Type.Validate(); err != nil {
			return tokens.EventPage{}, err
		}
	}
	var after tokens.Event
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		var nanos int64
		var id string
		if err == nil {
			before, rest, ok := strings.Cut(string(b), "|")
			_, err = fmt.Sscan(before, &nanos)
			id = rest
			if !ok || id == "" {
				err = fmt.Errorf("no id")
			}
		}
		if err != nil {
			return tokens.EventPage{}, tokens.Errorf(tokens.EINVALID, "page token is not one of this store's")
		}
		after = tokens.Event{OccurredAt: time.Unix(0, nanos), ID: id}
	}
	limit = tokens.PageSize(limit)
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []tokens.Event
	for _, e := range m.events {
		if (filter.UserID == "" || e.UserID == filter.UserID) && (filter.Type == "" || e.Type == filter.Type) &&
			(cursor == "" || newer(after, e) < 0) {
			e.Data = maps.Clone(e.Data)
			all = append(all, e)
		}
	}
	slices.SortFunc(all, newer)
	var page tokens.EventPage
	if len(all) > limit {
		all = all[:limit]
		page.Next = memCursor(all[limit-1])
	}
	page.Events = all
	return page, nil
}

// DeleteEventsBefore removes events as tokens.EventStore specifies.
func (m *MemEvents) DeleteEventsBefore(ctx context.Context, before time.Time) (int, error) {
	if err := memUnavailable(ctx); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, e := range m.events {
		if e.OccurredAt.Before(before) {
			delete(m.events, id)
			delete(m.hooks, id)
			n++
		}
	}
	return n, nil
}

// DueWebhooks returns due webhooks as events.Store specifies, oldest first.
func (m *MemEvents) DueWebhooks(ctx context.Context, now time.Time, limit int) ([]*events.Webhook, error) {
	if err := memUnavailable(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	heads := map[string]*events.Webhook{}
	for _, w := range m.hooks {
		if h := heads[w.Event.UserID]; w.State == events.StatePending && (h == nil || newer(w.Event, h.Event) > 0) {
			heads[w.Event.UserID] = w
		}
	}
	var due []*events.Webhook
	for _, w := range heads {
		if !w.NextAttemptAt.After(now) {
			c := *w
			c.Event.Data = maps.Clone(w.Event.Data)
			due = append(due, &c)
		}
	}
	slices.SortFunc(due, func(a, b *events.Webhook) int { return newer(b.Event, a.Event) })
	return due[:min(len(due), tokens.PageSize(limit))], nil
}

// ClaimWebhooks takes a user's webhook claim as events.Store specifies.
func (m *MemEvents) ClaimWebhooks(ctx context.Context, userID, owner string, now, until time.Time) (bool, error) {
	if err := memUnavailable(ctx); err != nil {
		return false, err
	}
	if err := events.CheckClaim(userID, owner); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.claims[userID]; ok && c.owner != owner && !c.until.Before(now) {
		return false, nil
	}
	if m.claims == nil {
		m.claims = map[string]memClaim{}
	}
	m.claims[userID] = memClaim{owner: owner, until: until}
	return true, nil
}

// ReleaseWebhooks gives a user's webhook claim up as events.Store specifies.
func (m *MemEvents) ReleaseWebhooks(ctx context.Context, userID, owner string) error {
	if err := memUnavailable(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.claims[userID]; ok && owner != "" && c.owner == owner {
		delete(m.claims, userID)
	}
	return nil
}

// PutWebhook writes a webhook's delivery record as events.Store specifies.
func (m *MemEvents) PutWebhook(ctx context.Context, w *events.Webhook) error {
	if err := memUnavailable(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.hooks[w.Event.ID]
	switch {
	case !ok:
		return fmt.Errorf("memevents: put webhook %q: %w", w.Event.ID, events.ErrWebhookNotFound)
	case cur.Version != w.Version:
		return fmt.Errorf("memevents: put webhook %q: %w", w.Event.ID, events.ErrVersionConflict)
	}
	m.version++
	cur.State, cur.Attempts, cur.NextAttemptAt, cur.LastError, cur.Version = w.State, w.Attempts, w.NextAttemptAt, w.LastError, m.version
	w.Version = m.version
	return nil
}

// WebhookBacklog counts pending webhooks as events.Store specifies.
func (m *MemEvents) WebhookBacklog(ctx context.Context) (int, time.Time, error) {
	if err := memUnavailable(ctx); err != nil {
		return 0, time.Time{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	var oldest time.Time
	for _, w := range m.hooks {
		if w.State == events.StatePending {
			n++
			if oldest.IsZero() || w.Event.OccurredAt.Before(oldest) {
				oldest = w.Event.OccurredAt
			}
		}
	}
	return n, oldest, nil
}
