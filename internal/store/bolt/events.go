package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ tokens.EventStore = (*Store)(nil)

// The buckets of the audit trail. An event is kept once, by id, and listed
// through three indexes whose keys end with the event's time key (see
// eventTimeKey) and whose values are the event id.
var (
	bucketEvents       = []byte("events")        // event id → event record
	bucketEventsByTime = []byte("events_time")   // time key → event id
	bucketEventsByUser = []byte("events_user")   // user id (length-prefixed), time key → event id
	bucketEventsByType = []byte("events_type")   // type (length-prefixed), time key → event id
	eventBuckets       = [][]byte{bucketEvents, bucketEventsByTime, bucketEventsByUser, bucketEventsByType}
)

// eventRecord is how a tokens.Event is kept in the "events" bucket.
type eventRecord struct {
	Format     int            `json:"format"`
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt string         `json:"occurred_at"`
	UserID     string         `json:"user_id"`
	SkillID    string         `json:"skill_id,omitempty"`
	Actor      string         `json:"actor"`
	Data       map[string]any `json:"data,omitempty"`
	Notify     bool           `json:"notify,omitempty"`
}

// eventBatch is how many events DeleteEventsBefore removes per transaction,
// so that a long backlog never makes one huge write.
const eventBatch = 1000

// checkEvents returns an EINVALID error when tokens.ValidateEvents refuses
// evs, or an event's index keys would be longer than bbolt keeps.
func checkEvents(evs []tokens.Event) error {
	if err := tokens.ValidateEvents(evs); err != nil {
		return err
	}
	for i := range evs {
		e := &evs[i]
		if n := binary.MaxVarintLen64 + max(len(e.UserID), len(e.Type)) + 8 + len(e.ID); n > bbolt.MaxKeySize {
			return tokens.Errorf(tokens.EINVALID, "event %q: user id and event id longer than %d bytes", e.ID, bbolt.MaxKeySize-8-binary.MaxVarintLen64)
		}
	}
	return nil
}

// writeEvents stores evs in tx, indexed, and the webhooks of those with
// Notify set. An event whose id is stored already is left as it is.
func writeEvents(tx *bbolt.Tx, evs []tokens.Event) error {
	eb := tx.Bucket(bucketEvents)
	for i := range evs {
		e := &evs[i]
		id := []byte(e.ID)
		if eb.Get(id) != nil {
			continue
		}
		v, err := json.Marshal(eventRecord{
			Format: recordFormat, ID: e.ID, Type: string(e.Type), OccurredAt: formatTime(e.OccurredAt),
			UserID: e.UserID, SkillID: e.SkillID, Actor: e.Actor, Data: e.Data, Notify: e.Notify,
		})
		if err != nil {
			return fmt.Errorf("bolt: encode event %q: %w", e.ID, err)
		}
		tk := eventTimeKey(e.OccurredAt, e.ID)
		for _, put := range []struct {
			bucket []byte
			k, v   []byte
		}{
			{bucketEvents, id, v},
			{bucketEventsByTime, tk, id},
			{bucketEventsByUser, prefixed(e.UserID, tk), id},
			{bucketEventsByType, prefixed(string(e.Type), tk), id},
		} {
			if err := tx.Bucket(put.bucket).Put(put.k, put.v); err != nil {
				return fmt.Errorf("bolt: store event: %w: %w", errUnavailable, err)
			}
		}
		if e.Notify {
			if err := createWebhook(tx, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// eventTimeKey is the key of an event in time order: its OccurredAt as 8
// bytes that sort as the Unix nanoseconds do, then its id.
func eventTimeKey(at time.Time, id string) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(at.UnixNano())^1<<63)
	return append(b, id...)
}

// timeOfKey is the inverse of the first 8 bytes of eventTimeKey.
func timeOfKey(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k)^1<<63)).UTC()
}

// prefixed returns s with its length before it (a uvarint), then rest: keys
// of one s are one range, whatever bytes s holds.
func prefixed(s string, rest []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(s)+len(rest)), uint64(len(s)))
	return append(append(b, s...), rest...)
}

// splitPrefixed returns the length of the prefix of k that prefixed made, or
// 0 when k does not start with one.
func splitPrefixed(k []byte) int {
	n, m := binary.Uvarint(k)
	if m <= 0 || uint64(len(k)-m) < n {
		return 0
	}
	return m + int(n)
}

// prefixEnd returns the first key after every key that starts with p, or nil
// when there is none.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// encodeCursor and decodeCursor make the time key of the last event of a page
// the opaque cursor of the next.
func encodeCursor(timeKey []byte) string { return base64.RawURLEncoding.EncodeToString(timeKey) }

func decodeCursor(cursor string) ([]byte, error) {
	k, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(k) < 9 {
		return nil, tokens.Errorf(tokens.EINVALID, "page token is not one of this store's")
	}
	return k, nil
}

// ListEvents returns a page of events as tokens.EventStore specifies, walking
// one index backwards in one read transaction: the user's when the filter
// names a user (skipping other types when it names one too), else the type's,
// else the time index. It returns an EINVALID error for an unknown type or a
// cursor that is not one of this store's, an EUNAVAILABLE error when the
// database cannot be read, and an EINTERNAL error when a record is corrupt.
func (s *Store) ListEvents(ctx context.Context, filter tokens.EventFilter, cursor string, limit int) (tokens.EventPage, error) {
	if filter.Type != "" {
		if err := filter.Type.Validate(); err != nil {
			return tokens.EventPage{}, err
		}
	}
	var after []byte
	if cursor != "" {
		var err error
		if after, err = decodeCursor(cursor); err != nil {
			return tokens.EventPage{}, err
		}
	}
	limit = tokens.PageSize(limit)
	bucket, prefix := bucketEventsByTime, []byte{}
	switch {
	case filter.UserID != "":
		bucket, prefix = bucketEventsByUser, prefixed(filter.UserID, nil)
	case filter.Type != "":
		bucket, prefix = bucketEventsByType, prefixed(string(filter.Type), nil)
	}
	var page tokens.EventPage
	err := s.view(ctx, "list events", func(tx *bbolt.Tx) error {
		eb := tx.Bucket(bucketEvents)
		c := tx.Bucket(bucket).Cursor()
		var k, id []byte
		start := prefixEnd(prefix)
		if after != nil {
			start = append(bytes.Clone(prefix), after...)
		}
		if start != nil {
			k, _ = c.Seek(start)
		}
		if k == nil {
			k, id = c.Last()
		} else {
			k, id = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, id = c.Prev() {
			v := eb.Get(id)
			if v == nil {
				return fmt.Errorf("bolt: list events: index names missing event %q", id)
			}
			e, err := decodeEvent(v)
			if err != nil {
				return err
			}
			if filter.Type != "" && e.Type != filter.Type {
				continue
			}
			if len(page.Events) == limit {
				last := page.Events[limit-1]
				page.Next = encodeCursor(eventTimeKey(last.OccurredAt, last.ID))
				break
			}
			page.Events = append(page.Events, e)
		}
		return nil
	})
	if err != nil {
		return tokens.EventPage{}, err
	}
	return page, nil
}

// DeleteEventsBefore removes the events that occurred before before, with
// their index entries and webhooks, as tokens.EventStore specifies, oldest
// first, up to eventBatch per transaction. When it fails, the events removed
// until then stay removed. It returns an EUNAVAILABLE error when the database
// cannot be written, and an EINTERNAL error when a record is corrupt.
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time) (int, error) {
	total := 0
	end := eventTimeKey(before, "")
	for {
		n := 0
		err := s.update(ctx, "delete events", func(tx *bbolt.Tx) error {
			var gone [][]byte
			c := tx.Bucket(bucketEventsByTime).Cursor()
			for k, id := c.First(); k != nil && bytes.Compare(k, end) < 0 && len(gone) < eventBatch; k, id = c.Next() {
				gone = append(gone, bytes.Clone(id))
			}
			for _, id := range gone {
				if err := deleteEvent(tx, id); err != nil {
					return err
				}
			}
			n = len(gone)
			return nil
		})
		total += n
		if err != nil || n < eventBatch {
			return total, err
		}
	}
}

// deleteEvent removes the event id, its index entries and its webhook, in tx.
func deleteEvent(tx *bbolt.Tx, id []byte) error {
	v := tx.Bucket(bucketEvents).Get(id)
	if v == nil {
		return fmt.Errorf("bolt: delete events: index names missing event %q", id)
	}
	e, err := decodeEvent(v)
	if err != nil {
		return err
	}
	tk := eventTimeKey(e.OccurredAt, e.ID)
	for _, del := range []struct {
		bucket []byte
		k      []byte
	}{
		{bucketEvents, id},
		{bucketEventsByTime, tk},
		{bucketEventsByUser, prefixed(e.UserID, tk)},
		{bucketEventsByType, prefixed(string(e.Type), tk)},
		{bucketWebhooks, id},
		{bucketWebhooksPending, prefixed(e.UserID, tk)},
	} {
		if err := tx.Bucket(del.bucket).Delete(del.k); err != nil {
			return fmt.Errorf("bolt: delete event: %w: %w", errUnavailable, err)
		}
	}
	return nil
}

// decodeEvent decodes an event record; one that does not decode is corrupt.
func decodeEvent(v []byte) (tokens.Event, error) {
	var rec eventRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return tokens.Event{}, fmt.Errorf("bolt: decode event: %w", err)
	}
	if rec.Format != recordFormat {
		return tokens.Event{}, fmt.Errorf("bolt: decode event %q: unknown record format %d", rec.ID, rec.Format)
	}
	at, err := parseTime(rec.OccurredAt)
	if err != nil {
		return tokens.Event{}, fmt.Errorf("bolt: decode event %q: %w", rec.ID, err)
	}
	return tokens.Event{
		ID: rec.ID, Type: tokens.EventType(rec.Type), OccurredAt: at, UserID: rec.UserID,
		SkillID: rec.SkillID, Actor: rec.Actor, Data: rec.Data, Notify: rec.Notify,
	}, nil
}
