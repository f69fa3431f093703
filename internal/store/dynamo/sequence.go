package dynamo

import (
	"sync"
	"time"
)

// sequencer hands out the Seq of new reports without a request to DynamoDB:
// a hybrid logical clock, the microseconds of the wall clock since 1970, or
// one more than the last it handed out or saw when the clock has not got
// there (it stood still, went back, or another process's clock is ahead).
//
// A shared counter item would order the reports of every process exactly, at
// the price of a second write per acceptance, one after the other, on one
// hot item: acceptance cost three requests and ran at 0.16–0.20 of a raw
// PutItem (BenchmarkAccept_Dynamo in cmd/broker). The clocks of the instances
// sharing a table order their reports instead: one process's are in the
// order they were accepted, and two reports of one lane accepted by two
// processes are in the order they were accepted unless they came closer
// together than the processes' clocks differ (Amazon Time Sync keeps EC2
// clocks well within a millisecond of each other). Seen values (see observe)
// pull a process that lags along.
//
// Microseconds fit an int64 for 292,000 years, and sortable's 20 digits.
// They are far above the values of the counter that earlier versions of the
// store used, so reports created since sort after those.
type sequencer struct {
	mu   sync.Mutex
	last int64
	now  func() time.Time // the wall clock
}

// next returns a Seq higher than every one next returned or observe saw.
func (q *sequencer) next() int64 {
	t := q.now().UnixMicro()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.last = max(q.last+1, t)
	return q.last
}

// observe moves the sequencer past seq, a Seq read from the table.
func (q *sequencer) observe(seq int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.last = max(q.last, seq)
}
