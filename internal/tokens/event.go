package tokens

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"sync"
	"time"
)

// EventType names a kind of event in a link's life, as the API and webhooks
// spell it.
type EventType string

// The event types. Link events record every change of a link; delivery events
// the final outcome of every delivery to Alexa.
const (
	// EventLinked: a code was exchanged and stored. Data: "region" (string),
	// "relinked" (bool, true when it replaced a link).
	EventLinked EventType = "link.linked"
	// EventRefreshed: LWA issued new tokens. Data: "trigger" ("caller",
	// "background" or "operator"), "access_token_expires_at" (RFC 3339).
	EventRefreshed EventType = "link.refreshed"
	// EventRelinkRequired: the link became RELINK_REQUIRED. Data: "reason"
	// ("invalid_grant", "alexa_forbidden", ...).
	EventRelinkRequired EventType = "link.relink_required"
	// EventDeleted: the link and its tokens were removed. Data: "reason"
	// ("operator", "skill_disabled", "user_request", ...).
	EventDeleted EventType = "link.deleted"
	// EventDelivered: Amazon accepted a report or Alexa event. Data:
	// "message_id", "kind" ("profile_report" or "alexa_event").
	EventDelivered EventType = "delivery.delivered"
	// EventDeliveryFailed: a report or Alexa event ended FAILED. Data:
	// "message_id", "kind", "last_error".
	EventDeliveryFailed EventType = "delivery.failed"
)

// EventTypes lists every event type, link events first.
var EventTypes = []EventType{EventLinked, EventRefreshed, EventRelinkRequired, EventDeleted, EventDelivered, EventDeliveryFailed}

// Validate returns an EINVALID error unless t is one of EventTypes.
func (t EventType) Validate() error {
	for _, known := range EventTypes {
		if t == known {
			return nil
		}
	}
	return Errorf(EINVALID, "unknown event type %q", string(t))
}

// Actors of events that are not a calling client.
const (
	// ActorAlexa caused hand-overs.
	ActorAlexa = "alexa"
	// ActorBroker caused what the broker decided itself: a refresh it needed,
	// a link it found broken, a delivery outcome.
	ActorBroker = "broker"
)

// Event is one change in a link's life, or the final outcome of one delivery:
// the audit trail, and what webhooks send. It never holds a token, code or
// secret.
type Event struct {
	// ID identifies the event ("evt_" and 26 characters), the same on every
	// webhook attempt. IDs made by NewEvent sort by the time they were made,
	// and within a process in the order they were made.
	ID string
	// Type says what happened.
	Type EventType
	// OccurredAt is when it happened.
	OccurredAt time.Time
	// UserID is the partner's user whose link it concerns.
	UserID string
	// SkillID is the skill of the link.
	SkillID string
	// Actor is who caused it: the calling token's client for API calls that
	// change a link, ActorAlexa for hand-overs, ActorBroker for the broker's
	// own decisions.
	Actor string
	// Data holds the type's details as JSON values (strings, booleans); see
	// the EventType constants. Times are RFC 3339 strings.
	Data map[string]any
	// Notify says whether the event is also to be sent to the webhook: stores
	// keep such an event in the webhook outbox until it is delivered or given
	// up. It is decided when the event is made (BROKER_WEBHOOK_EVENTS) and is
	// not part of the event's JSON.
	Notify bool
}

// NewEvent returns an event of typ for userID, caused by actor at at, with a
// new time-ordered ID and the default skill.
func NewEvent(typ EventType, userID, actor string, at time.Time, data map[string]any) Event {
	return Event{ID: NewEventID(at), Type: typ, OccurredAt: at, UserID: userID, SkillID: DefaultSkillID, Actor: actor, Data: data}
}

// Validate returns an EINVALID error when the event cannot be stored: no ID,
// an unknown type, no time, no user or no actor.
func (e *Event) Validate() error {
	switch {
	case e.ID == "":
		return Errorf(EINVALID, "event has no id")
	case e.OccurredAt.IsZero():
		return Errorf(EINVALID, "event has no time")
	case e.UserID == "":
		return Errorf(EINVALID, "event has no user id")
	case e.Actor == "":
		return Errorf(EINVALID, "event has no actor")
	}
	return e.Type.Validate()
}

// eventIDEncoding is Crockford's base32, whose alphabet sorts as its values.
var eventIDEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// lastEventID is the last id NewEventID made in this process.
var lastEventID struct {
	sync.Mutex
	b [16]byte
}

// NewEventID returns a new event id made at t: "evt_", then 48 bits of Unix
// milliseconds and 80 random bits in Crockford base32 (the layout of a ULID),
// so that ids sort by time to the millisecond and never repeat. Within a
// process ids are monotonic, as a ULID's monotonic generator makes them: an id
// that would not sort after the last one made (the same millisecond, or a
// clock that stood still or went back) is the last one plus one, so that
// events made one after the other at the same time sort in the order they
// were made. Written here rather than with a ULID library because the domain
// imports only the standard library.
func NewEventID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	lastEventID.Lock()
	if bytes.Compare(b[:], lastEventID.b[:]) <= 0 {
		b = lastEventID.b
		for i := len(b) - 1; i >= 0; i-- { // plus one, carrying
			b[i]++
			if b[i] != 0 {
				break
			}
		}
	}
	lastEventID.b = b
	lastEventID.Unlock()
	return "evt_" + eventIDEncoding.EncodeToString(b[:])
}

// EventFilter narrows a listing of events; zero fields match every event.
type EventFilter struct {
	// UserID keeps the events of one user.
	UserID string
	// Type keeps the events of one type.
	Type EventType
}

// EventPage is one page of EventStore.ListEvents.
type EventPage struct {
	// Events are newest first.
	Events []Event
	// Next is the cursor of the following page, or "" after the last one.
	Next string
}
