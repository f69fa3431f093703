package tokens

import "time"

// EventObserver is told of every event stored, for metrics. Its method must be
// quick and safe for concurrent use.
type EventObserver interface {
	// EventStored is called once for each event stored with its change.
	EventStored(t EventType)
}

// Recorder makes the events that the broker's services store with their
// changes (Service here, the reports deliverer), and tells Observer of those
// stored. One Recorder serves every service of a broker, so that they mark
// and count events alike. A nil *Recorder makes events that notify nothing
// and observes nothing. Set its fields before use; it is then safe for
// concurrent use.
type Recorder struct {
	// Notify decides which events are also sent to the webhook
	// (BROKER_WEBHOOK_EVENTS): it sets Event.Notify. nil notifies nothing.
	Notify func(EventType) bool
	// Observer is told of every event stored; nil observes nothing.
	Observer EventObserver
}

// Event returns a new event of typ for userID, caused by actor at at (see
// NewEvent), marked for the webhook when Notify says so.
func (r *Recorder) Event(typ EventType, userID, actor string, at time.Time, data map[string]any) Event {
	e := NewEvent(typ, userID, actor, at, data)
	if r != nil && r.Notify != nil {
		e.Notify = r.Notify(typ)
	}
	return e
}

// Stored tells Observer of events that were stored.
func (r *Recorder) Stored(events ...Event) {
	if r == nil || r.Observer == nil {
		return
	}
	for _, e := range events {
		r.Observer.EventStored(e.Type)
	}
}

// NotifyOf returns a Recorder.Notify that marks the events of types, and
// none other: the set BROKER_WEBHOOK_EVENTS names. It returns nil, which
// notifies nothing, when types is empty.
func NotifyOf(types []EventType) func(EventType) bool {
	if len(types) == 0 {
		return nil
	}
	set := make(map[EventType]bool, len(types))
	for _, t := range types {
		set[t] = true
	}
	return func(t EventType) bool { return set[t] }
}
