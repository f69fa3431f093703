package tokens

import (
	"context"
	"time"
)

// EventStore is the audit trail: the events that Store.PutLink and
// Store.DeleteLink (and the outbox's writes) stored with their changes.
// Implementations are safe for concurrent use, also by several processes
// sharing the same storage. Every method may return an EUNAVAILABLE error when
// the storage cannot be reached, and an EINTERNAL error when a stored record
// is corrupt. Events outlive their link: deleting a link keeps its events.
type EventStore interface {
	// ListEvents returns up to PageSize(limit) events that match filter,
	// newest first (by OccurredAt, then ID), starting after the event whose
	// cursor is cursor ("" for the first page). It returns an EINVALID error
	// when filter.Type is set and unknown, or cursor is not one of the store's.
	ListEvents(ctx context.Context, filter EventFilter, cursor string, limit int) (EventPage, error)

	// DeleteEventsBefore removes the events that occurred before before, and
	// returns how many. An event still waiting in the webhook outbox is
	// removed with it.
	DeleteEventsBefore(ctx context.Context, before time.Time) (int, error)
}

// LinkCounter is an optional ability of a Store: how many links are in each
// state, answered without reading every link (counters kept with each write,
// or an index), the same on every process sharing the storage within seconds
// of a change. Every method may return EUNAVAILABLE and EINTERNAL errors.
type LinkCounter interface {
	// CountLinks returns the number of links in each state; states with no
	// link may be missing from the map.
	CountLinks(ctx context.Context) (map[State]int, error)
}

// ValidateEvents returns the first error of the events' Validate, or nil.
// Every store's writes that take events call it before writing anything.
func ValidateEvents(events []Event) error {
	for i := range events {
		if err := events[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

// LinkCounters counts the links of several stores together, such as the
// views of one storage for each skill. Its CountLinks returns the first error
// of one of them.
type LinkCounters []LinkCounter

var _ LinkCounter = LinkCounters(nil)

// CountLinks returns the sums of the counts by state of every counter.
func (cs LinkCounters) CountLinks(ctx context.Context) (map[State]int, error) {
	sum := map[State]int{}
	for _, c := range cs {
		counts, err := c.CountLinks(ctx)
		if err != nil {
			return nil, err
		}
		for st, n := range counts {
			sum[st] += n
		}
	}
	return sum, nil
}
