package tokens

// NotifySet is the set of event types also sent to the webhook
// (BROKER_WEBHOOK_EVENTS). The nil set sends none: webhooks are off.
type NotifySet map[EventType]bool

// NewNotifySet returns the set of types.
func NewNotifySet(types []EventType) NotifySet {
	n := make(NotifySet, len(types))
	for _, t := range types {
		n[t] = true
	}
	return n
}

// Mark sets each event's Notify: whether its type is in the set. Whoever
// makes events calls it before they are stored.
func (n NotifySet) Mark(events []Event) {
	for i := range events {
		events[i].Notify = n[events[i].Type]
	}
}
