package dynamo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/time/rate"
)

// A table orders its reports (their Seq) in one of two ways, and says which in
// the attribute n of its REPORTS counter item:
//
//   - counter order (n a Number): each new report takes the next value of
//     the counter, an UpdateItem before the report's own PutItem. The order
//     is exact across every instance, and it is the only one brokers of
//     earlier versions know.
//   - clock order (n the String clockOrder): each new report takes its Seq
//     from its process's hybrid logical clock (see sequencer), and accepting
//     it is the report's conditional PutItem alone.
//
// A table that New created starts in clock order. Any other table, even one
// without reports, is in counter order (its first report makes the counter)
// until an instance with Options.ClockOrder switches it: brokers of earlier
// versions may serve a table this process did not create. The switch cannot
// be undone. Every Seq of clock order is above every Seq the counter handed
// out: the clock's microseconds since 1970 are far above any count, and the
// switch moves the clock past the counter's value it read besides.
//
// Brokers of earlier versions take the counter's next value with an ADD,
// which DynamoDB refuses on a String: on a table in clock order they fail to
// accept reports (an internal error) rather than give them numbers far below
// the clock's, which their lanes' delivered marks would pass over. Instances
// of this version still in counter order find the switch the same way, read
// the item again and follow.
const clockOrder = "clock"

// Report orders, as reportOrder holds them.
const (
	orderUnknown int32 = iota // not read from the table yet
	orderCounter
	orderClock
)

// reportOrder is the table's report order as this process knows it, shared by
// the views of one Store.
type reportOrder struct {
	mode    atomic.Int32 // orderUnknown, orderCounter or orderClock; never leaves orderClock
	toClock bool         // start or switch the table to clock order: Options.ClockOrder, or New created the table
	clock   sequencer
	logger  *slog.Logger   // where observe warns
	warned  rate.Sometimes // observe's warnings, at most one a minute
}

// clockLeadWarning is how far a Seq read from the table may be ahead of this
// process's clock before observe warns: far more than Amazon Time Sync lets
// instances' clocks differ, or than the logical clock runs ahead of the wall
// clock by handing out more than one Seq a microsecond.
const clockLeadWarning = 100 * time.Millisecond

// observe moves the clock past seq, a Seq read from the table, and warns when
// seq is more than clockLeadWarning ahead of this process's clock: the
// instances' clocks disagree by that much (or this one went back), and two
// reports of one lane that two instances accept within that time of each
// other may be ordered the other way, the later one then superseded by the
// earlier and never sent.
func (o *reportOrder) observe(seq int64) {
	lead := o.clock.observe(seq)
	if lead <= clockLeadWarning.Microseconds() {
		return
	}
	o.warned.Do(func() {
		o.logger.Warn("report order: a Seq read from the table is ahead of this process's clock: the instances' clocks disagree, and of two reports of one user that two instances accept within the lead of each other, the later may be superseded unsent",
			"lead", time.Duration(min(lead, math.MaxInt64/1000))*time.Microsecond)
	})
}

// nextSeq returns the Seq and first version of a new report: from the
// counter, shifted left by versionShift, in counter order; from the clock,
// the same number twice, in clock order. The first call reads the table's
// order (see clockOrder), and starts or switches it to clock order when it
// should.
func (s *Store) nextSeq(ctx context.Context) (seq, version int64, err error) {
	mode := s.order.mode.Load()
	if mode == orderUnknown {
		if mode, err = s.readOrder(ctx); err != nil {
			return 0, 0, err
		}
	}
	if mode == orderCounter {
		seq, err = s.next(ctx, "create report: next sequence", skCounterReports)
		if err == nil {
			return seq, seq << versionShift, nil
		}
		if !errors.Is(err, errRejected) {
			return 0, 0, err
		}
		// Another instance may have switched the table to clock order: the
		// counter is a String now.
		switch mode, rerr := s.readOrder(ctx); {
		case rerr != nil:
			return 0, 0, rerr
		case mode != orderClock:
			return 0, 0, err
		}
	}
	// The first version is the Seq: the same message id is created again only
	// once its report has been removed, long after it finished, far more
	// microseconds later than it had updates.
	seq = s.order.clock.next()
	return seq, seq, nil
}

// readOrder reads the table's report order from its REPORTS counter item with
// a strongly consistent read, starts or switches the table to clock order
// when reportOrder.toClock asks, and remembers the order. It returns an
// EUNAVAILABLE error when DynamoDB cannot be reached, and an EINTERNAL error
// when the item holds neither order.
func (s *Store) readOrder(ctx context.Context) (int32, error) {
	for range 3 {
		item, err := s.get(ctx, "report order", pkCounter, skCounterReports)
		if err != nil {
			return 0, err
		}
		switch n := item[attrCounterValue].(type) {
		case nil:
			if !s.order.toClock {
				// Brokers of earlier versions may serve the table, and will
				// make the counter with their first report, as this one does.
				s.order.mode.CompareAndSwap(orderUnknown, orderCounter)
				return s.order.mode.Load(), nil
			}
			// No report has taken a number from the counter: nothing to order
			// the clock's numbers after.
			ok, err := s.setClockOrder(ctx, expression.AttributeNotExists(expression.Name(attrCounterValue)))
			if err != nil {
				return 0, err
			}
			if !ok {
				continue // another instance took a number or switched: read again
			}
			s.order.mode.Store(orderClock)
			return orderClock, nil
		case *types.AttributeValueMemberS:
			if n.Value != clockOrder {
				return 0, fmt.Errorf("dynamo: report order: counter holds %q: %w", n.Value, errCorrupt)
			}
			s.order.mode.Store(orderClock)
			return orderClock, nil
		case *types.AttributeValueMemberN:
			if !s.order.toClock {
				// A concurrent switch is found by the next counter update.
				s.order.mode.CompareAndSwap(orderUnknown, orderCounter)
				return s.order.mode.Load(), nil
			}
			var last int64
			if _, err := fmt.Sscan(n.Value, &last); err != nil {
				return 0, fmt.Errorf("dynamo: report order: counter holds %q: %w", n.Value, errCorrupt)
			}
			// The clock moves past the counter's value before any report takes
			// a number from it. Values other instances take from the counter
			// until the switch are far below the clock too: no count comes
			// near the microseconds since 1970. So the switch holds while the
			// counter is a number, however far it moved since the read:
			// requiring the value read would fail the switch again and again
			// while earlier brokers still add to it.
			s.order.observe(last)
			ok, err := s.setClockOrder(ctx, expression.Name(attrCounterValue).AttributeType(expression.Number))
			if err != nil {
				return 0, err
			}
			if !ok {
				continue // the counter is gone, or another instance switched: read again
			}
			s.order.mode.Store(orderClock)
			return orderClock, nil
		default:
			return 0, fmt.Errorf("dynamo: report order: counter holds %T: %w", n, errCorrupt)
		}
	}
	return 0, fmt.Errorf("dynamo: report order: the counter kept changing: %w", errUnavailable)
}

// setClockOrder writes clockOrder to the REPORTS counter item when cond holds,
// and reports whether it held.
func (s *Store) setClockOrder(ctx context.Context, cond expression.ConditionBuilder) (bool, error) {
	_, held, err := s.updateIf(ctx, "report order: switch to clock order", pkCounter, skCounterReports,
		expression.Set(expression.Name(attrCounterValue), expression.Value(clockOrder)), cond, types.ReturnValueNone)
	return held, err
}

// sequencer hands out the Seq of new reports in clock order without a request
// to DynamoDB: a hybrid logical clock, the microseconds of the wall clock
// since 1970, or one more than the last it handed out or saw when the clock
// has not got there (it stood still, went back, or another process's clock
// is ahead).
//
// The clocks of the instances sharing a table order their reports: one
// process's are in the order they were accepted, and two reports of one lane
// accepted by two processes are in the order they were accepted unless they
// came closer together than the processes' clocks differ (Amazon Time Sync
// keeps EC2 clocks well within a millisecond of each other). Seen values (see
// observe) pull a process that lags along. A counter item would order them
// exactly, for a second write per report on one hot item, one after the
// other: acceptance ran at 0.16–0.20 of a raw PutItem that way, 0.38–0.43
// without (BenchmarkAccept_Dynamo in cmd/broker).
//
// Microseconds fit an int64 for 292,000 years, and sortable's 20 digits.
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

// observe moves the sequencer past seq, a Seq read from the table, and
// returns how many microseconds seq is ahead of the wall clock (negative when
// it is behind).
func (q *sequencer) observe(seq int64) int64 {
	t := q.now().UnixMicro()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.last = max(q.last, seq)
	return seq - t
}
