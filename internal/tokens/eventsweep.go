package tokens

import (
	"context"
	"time"
)

// DefaultEventRetention is how long events are kept by default
// (BROKER_EVENT_RETENTION): ninety days.
const DefaultEventRetention = 2160 * time.Hour

// SweepEventsInBackground removes the events that occurred more than retention
// ago from the Service's store, once at once and then every interval, until
// ctx ends: the audit trail keeps retention's worth of events, also of
// deleted links. It returns at once when the store is not an EventStore, or
// retention or interval is not positive. A sweep that fails is logged and
// tried again at the next interval.
func (s *Service) SweepEventsInBackground(ctx context.Context, retention, interval time.Duration) {
	events, ok := s.store.(EventStore)
	if !ok || retention <= 0 || interval <= 0 {
		return
	}
	s.sweepEvery(ctx, interval, "events older than "+retention.String(), func(now time.Time) (int, error) {
		return events.DeleteEventsBefore(ctx, now.Add(-retention))
	})
}
