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
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := events.DeleteEventsBefore(ctx, s.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.Logger.Warn("removing old events failed", "removed", n, "err", err.Error())
		case n > 0:
			s.Logger.Info("removed old events", "removed", n, "retention", retention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
