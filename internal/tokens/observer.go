package tokens

// EventObserver is told of every event stored, for metrics. Its method must be
// quick and safe for concurrent use.
type EventObserver interface {
	// EventStored is called once for each event stored with its change, with
	// the event's type and skill.
	EventStored(t EventType, skillID string)
}

// ObserveStored tells o, when it is not nil, of events that were stored.
func ObserveStored(o EventObserver, events ...Event) {
	if o == nil {
		return
	}
	for _, e := range events {
		o.EventStored(e.Type, e.SkillID)
	}
}
