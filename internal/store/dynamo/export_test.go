package dynamo

import "time"

// SetNow replaces the store's clock, which decides when an outbox is old
// enough for readers to flush it.
func SetNow(s *Store, now func() time.Time) { s.now = now }

// OutboxGrace is outboxGrace, for tests.
const OutboxGrace = outboxGrace

// SetSeqClock replaces the wall clock of the store's clock order (shared by
// its views), before the store's first report.
func SetSeqClock(s *Store, now func() time.Time) { s.order.clock.now = now }
