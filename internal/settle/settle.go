// Package settle holds back the head of an ordered queue read from an
// eventually consistent index (DynamoDB's global secondary index) until the
// index has had time to show every older item.
//
// A queue's items are written one after another, each accepted once the one
// before it was stored, so an item older than the head was written before the
// head was. (Two items whose writes overlap have no order to keep: either may
// go first.) When a deliverer first sees an item listed, it has been written
// already; once Lag has passed since, every older item has been too, Lag ago
// or more, and an index that lags by less than Lag lists it. So the head
// waits until Lag after the item was first listed, and the deliverer then
// reads the queue again and sends whichever item is its head, oldest first,
// as the queue promises. Items listed behind the head start their wait at
// once, so a backlog the deliverer reads whole settles together rather than
// one Lag per item; a deliverer that sees only each queue's head pays Lag for
// each. With a store that reads its own writes (bbolt), Lag is zero and
// nothing waits.
package settle

import (
	"sync"
	"time"
)

// forgetAfter is how long a queue's sightings are kept after it was last
// listed: long enough to cover the attempt that follows. A queue listed again
// after that starts its waits anew.
const forgetAfter = time.Minute

// Queues remembers when each queue's items were first listed. The zero
// value, Lag zero, holds nothing back. It is safe for concurrent use.
type Queues struct {
	// Lag is how long an item waits after it was first listed before it is
	// sent as its queue's head: at least the index's replication lag.
	Lag time.Duration

	mu      sync.Mutex
	queues  map[string]*queue
	pruneAt int // the number of queues at which those long unlisted are dropped
}

// queue is what Queues remembers of one queue.
type queue struct {
	seen    map[string]time.Time // item id → when it was first listed
	listed  time.Time            // when the queue was last listed
	settles time.Time            // when its head, as last listed, may be sent
}

// Wait records that the index listed ids, oldest first, as the items of the
// named queue at now, and returns how long the first of them, the queue's
// head, must still wait before it is sent: zero once Lag has passed since it
// was first listed. Items no longer listed are forgotten.
func (q *Queues) Wait(name string, ids []string, now time.Time) time.Duration {
	if q.Lag <= 0 || len(ids) == 0 {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	qu, ok := q.queues[name]
	if !ok {
		if q.queues == nil {
			q.queues = make(map[string]*queue)
		}
		if len(q.queues) >= q.pruneAt {
			q.forgetOld(now)
			// Amortized: the next pass waits until there are twice as many.
			q.pruneAt = max(2*len(q.queues), 64)
		}
		qu = &queue{}
		q.queues[name] = qu
	}
	seen := make(map[string]time.Time, len(ids))
	for _, id := range ids {
		at, ok := qu.seen[id]
		if !ok {
			at = now
		}
		seen[id] = at
	}
	qu.seen, qu.listed, qu.settles = seen, now, seen[ids[0]].Add(q.Lag)
	return max(qu.settles.Sub(now), 0)
}

// Left returns how long the head of the named queue, as Wait last saw it
// listed, must still wait at now; zero when it has settled or the queue is
// not known. A deliverer asks it before it reads the queue again, to skip a
// queue that would wait anyway, and after, to be woken when the head settles.
func (q *Queues) Left(name string, now time.Time) time.Duration {
	if q.Lag <= 0 {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	qu, ok := q.queues[name]
	if !ok {
		return 0
	}
	return max(qu.settles.Sub(now), 0)
}

// forgetOld drops the queues last listed more than Lag and forgetAfter ago,
// so that queues emptied since, or served by another instance, do not stay
// remembered; q.mu is held.
func (q *Queues) forgetOld(now time.Time) {
	for name, qu := range q.queues {
		if now.Sub(qu.listed) > q.Lag+forgetAfter {
			delete(q.queues, name)
		}
	}
}
