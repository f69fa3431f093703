package reports

import "context"

// Counter is an optional ability of a Store: how many reports are in each
// state, answered without reading every report (counters kept with each
// write, or an index), the same on every process sharing the storage within
// seconds of a change. CountReports may return EUNAVAILABLE and EINTERNAL
// errors.
type Counter interface {
	// CountReports returns the number of stored reports in each state; states
	// with no report may be missing from the map.
	CountReports(ctx context.Context) (map[State]int, error)
}
