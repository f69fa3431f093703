package reports

import "time"

// Backoff returns the wait after a report's attempts-th failed attempt, for
// the tests of package reports_test.
func (d *Deliverer) Backoff(attempts int) time.Duration { return d.backoff(attempts) }
