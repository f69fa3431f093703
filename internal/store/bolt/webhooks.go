package bolt

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ events.Store = (*Store)(nil)

// The buckets of the webhook outbox: each webhook's delivery record by event
// id, and the pending index by user and event order (the user id
// length-prefixed, then the event's time key) whose first key of a user is
// the user's oldest pending webhook.
var (
	bucketWebhooks        = []byte("webhooks")         // event id → webhook record
	bucketWebhooksPending = []byte("webhooks_pending") // user id (length-prefixed), time key → event id
)

// webhookRecord is how an events.Webhook's delivery record is kept; the
// event is the one in the "events" bucket.
type webhookRecord struct {
	Format        int    `json:"format"`
	State         string `json:"state"`
	Attempts      int    `json:"attempts,omitempty"`
	NextAttemptAt string `json:"next_attempt_at,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	Version       int64  `json:"version"`
}

// createWebhook stores a PENDING webhook of e, indexed, in tx.
func createWebhook(tx *bbolt.Tx, e *tokens.Event) error {
	b := tx.Bucket(bucketWebhooks)
	n, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("bolt: create webhook: %w: %w", errUnavailable, err)
	}
	return putWebhook(tx, e, &events.Webhook{State: events.StatePending}, int64(n))
}

// putWebhook writes w's delivery record for e with version, and keeps the
// pending index in step.
func putWebhook(tx *bbolt.Tx, e *tokens.Event, w *events.Webhook, version int64) error {
	v, err := json.Marshal(webhookRecord{
		Format: recordFormat, State: w.State.String(), Attempts: w.Attempts,
		NextAttemptAt: formatTime(w.NextAttemptAt), LastError: w.LastError, Version: version,
	})
	if err != nil {
		return fmt.Errorf("bolt: encode webhook %q: %w", e.ID, err)
	}
	if err := tx.Bucket(bucketWebhooks).Put([]byte(e.ID), v); err != nil {
		return fmt.Errorf("bolt: put webhook: %w: %w", errUnavailable, err)
	}
	pending, key := tx.Bucket(bucketWebhooksPending), prefixed(e.UserID, eventTimeKey(e.OccurredAt, e.ID))
	if w.State == events.StatePending {
		err = pending.Put(key, []byte(e.ID))
	} else {
		err = pending.Delete(key)
	}
	if err != nil {
		return fmt.Errorf("bolt: index webhook: %w: %w", errUnavailable, err)
	}
	return nil
}

// readWebhook returns the webhook of the event id, or nil when there is none.
func readWebhook(tx *bbolt.Tx, id []byte) (*events.Webhook, error) {
	v := tx.Bucket(bucketWebhooks).Get(id)
	if v == nil {
		return nil, nil
	}
	ev := tx.Bucket(bucketEvents).Get(id)
	if ev == nil {
		return nil, fmt.Errorf("bolt: webhook %q without its event", id)
	}
	e, err := decodeEvent(ev)
	if err != nil {
		return nil, err
	}
	var rec webhookRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("bolt: decode webhook %q: %w", id, err)
	}
	if rec.Format != recordFormat {
		return nil, fmt.Errorf("bolt: decode webhook %q: unknown record format %d", id, rec.Format)
	}
	w := &events.Webhook{Event: e, Attempts: rec.Attempts, LastError: rec.LastError, Version: rec.Version}
	if w.State, err = parseWebhookState(rec.State); err != nil {
		return nil, fmt.Errorf("bolt: decode webhook %q: %w", id, err)
	}
	if w.NextAttemptAt, err = parseTime(rec.NextAttemptAt); err != nil {
		return nil, fmt.Errorf("bolt: decode webhook %q: %w", id, err)
	}
	return w, nil
}

// parseWebhookState is the inverse of events.State.String.
func parseWebhookState(s string) (events.State, error) {
	for _, st := range []events.State{events.StatePending, events.StateDelivered, events.StateGivenUp} {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown webhook state %q", s)
}

// DueWebhooks returns the oldest pending webhook of each user that is due, as
// events.Store specifies, oldest first. It reads the first key of each user
// in the pending index (seeking past the rest of the user's keys) in one read
// transaction, so a user's backlog costs one seek.
func (s *Store) DueWebhooks(ctx context.Context, now time.Time, limit int) ([]*events.Webhook, error) {
	limit = tokens.PageSize(limit)
	var due []*events.Webhook
	err := s.view(ctx, "due webhooks", func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketWebhooksPending).Cursor()
		for k, id := c.First(); k != nil; {
			n := splitPrefixed(k)
			if n == 0 {
				return fmt.Errorf("bolt: due webhooks: bad pending key %q", k)
			}
			w, err := readWebhook(tx, id)
			if err != nil {
				return err
			}
			if w != nil && w.State == events.StatePending && !w.NextAttemptAt.After(now) {
				due = append(due, w)
			}
			end := prefixEnd(k[:n])
			if end == nil {
				break
			}
			k, id = c.Seek(end)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortWebhooks(due)
	return due[:min(len(due), limit)], nil
}

// sortWebhooks sorts ws oldest first: by event OccurredAt, then ID.
func sortWebhooks(ws []*events.Webhook) {
	slices.SortFunc(ws, func(a, b *events.Webhook) int {
		return cmp.Or(a.Event.OccurredAt.Compare(b.Event.OccurredAt), cmp.Compare(a.Event.ID, b.Event.ID))
	})
}

// ClaimWebhooks takes userID's webhook claim for owner as events.Store
// specifies, in memory, as ClaimDelivery does (see deliveryClaims). It
// returns an EINVALID error when events.CheckClaim refuses the arguments,
// and an EUNAVAILABLE error when the context has ended or the database is
// closed.
func (s *Store) ClaimWebhooks(ctx context.Context, userID, owner string, now, until time.Time) (bool, error) {
	if err := events.CheckClaim(userID, owner); err != nil {
		return false, err
	}
	var held bool
	err := s.view(ctx, "claim webhooks", func(*bbolt.Tx) error {
		held = s.webhookClaims.take(userID, owner, now, until)
		return nil
	})
	return held, err
}

// ReleaseWebhooks ends owner's webhook claim of userID as events.Store
// specifies, in memory. It always returns nil.
func (s *Store) ReleaseWebhooks(_ context.Context, userID, owner string) error {
	s.webhookClaims.release(userID, owner)
	return nil
}

// PutWebhook writes w's delivery record as events.Store specifies, in one
// transaction that compares versions and keeps the pending index in step; the
// new version comes from the bucket's sequence. It returns an EINVALID error
// for an unknown state, ErrWebhookNotFound (wrapped) when the event is gone,
// ErrVersionConflict (wrapped) when the stored version differs, an
// EUNAVAILABLE error when the database cannot be written, and an EINTERNAL
// error when the stored record is corrupt.
func (s *Store) PutWebhook(ctx context.Context, w *events.Webhook) error {
	if _, err := parseWebhookState(w.State.String()); err != nil {
		return tokens.Errorf(tokens.EINVALID, "webhook state %d is unknown", int(w.State))
	}
	var version int64
	err := s.update(ctx, "put webhook", func(tx *bbolt.Tx) error {
		stored, err := readWebhook(tx, []byte(w.Event.ID))
		switch {
		case err != nil:
			return err
		case stored == nil:
			return fmt.Errorf("bolt: put webhook %q: %w", w.Event.ID, events.ErrWebhookNotFound)
		case stored.Version != w.Version:
			return fmt.Errorf("bolt: put webhook %q: stored version %d, given %d: %w", w.Event.ID, stored.Version, w.Version, events.ErrVersionConflict)
		}
		n, err := tx.Bucket(bucketWebhooks).NextSequence()
		if err != nil {
			return fmt.Errorf("bolt: put webhook: %w: %w", errUnavailable, err)
		}
		version = int64(n)
		return putWebhook(tx, &stored.Event, w, version)
	})
	if err != nil {
		return err
	}
	w.Version = version
	return nil
}

// WebhookBacklog returns the number of pending webhooks and the time of the
// oldest, as events.Store specifies, from the keys of the pending index alone
// (each key holds its event's time). It returns an EUNAVAILABLE error when
// the database cannot be read.
func (s *Store) WebhookBacklog(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest time.Time
	err := s.view(ctx, "webhook backlog", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketWebhooksPending).ForEach(func(k, _ []byte) error {
			p := splitPrefixed(k)
			if p == 0 || len(k) < p+8 {
				return fmt.Errorf("bolt: webhook backlog: bad pending key %q", k)
			}
			n++
			if at := timeOfKey(k[p:]); oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
			return nil
		})
	})
	return n, oldest, err
}
