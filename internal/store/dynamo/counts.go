package dynamo

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var (
	_ tokens.LinkCounter = (*Store)(nil)
	_ reports.Counter    = (*Store)(nil)
)

// Prefixes of the counter attributes of the STATS counter item: links_LINKED,
// reports_PENDING, webhooks_PENDING and so on, each a Number.
const (
	countLinks    = "links_"
	countReports  = "reports_"
	countWebhooks = "webhooks_"
)

// count adds deltas to the STATS counter item in one update (ADD, atomic).
// It runs after the change it counts has been written: a failure, or a crash
// between the two writes, leaves a counter one off, and is not the change's
// error (the change happened).
func (s *Store) count(ctx context.Context, deltas map[string]int) {
	s.add(ctx, skCounterStats, "", deltas)
}

// countLinks adds deltas to the counter item of the view's links as count
// does: the STATS item for the default skill, another skill's own item
// (which names the skill in skill_id, see Skills) for the others.
func (s *Store) countLinks(ctx context.Context, deltas map[string]int) {
	skill := ""
	if s.keys.stats != skCounterStats {
		skill = s.skill
	}
	s.add(ctx, s.keys.stats, skill, deltas)
}

// add adds deltas to the counter item with sort key sk, and sets its
// skill_id to skill when it is not empty.
func (s *Store) add(ctx context.Context, sk, skill string, deltas map[string]int) {
	var upd expression.UpdateBuilder
	n := 0
	for name, d := range deltas {
		if d != 0 && !strings.HasSuffix(name, "_") {
			upd = upd.Add(expression.Name(name), expression.Value(d))
			n++
		}
	}
	if n == 0 {
		return
	}
	if skill != "" {
		upd = upd.Set(expression.Name(attrSkillID), expression.Value(skill))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return
	}
	_, _ = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table, Key: key(pkCounter, sk),
		UpdateExpression: expr.Update(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
}

// countTimeout bounds one addition of queued report counts.
const countTimeout = 10 * time.Second

// countQueue adds the report counts of the table's writes to the STATS item
// in the background, so that no report write waits for its count, and the
// writes of many reports cost one update of the counter item between them: a
// flusher goroutine, started by the first delta queued while none runs, adds
// everything queued in one UpdateItem, then what was queued meanwhile, until
// nothing is left. There is no timer: a lone write's count is added at once.
// CountReports waits for the flusher first, so that a process's own counts
// are exact when it reads them; other processes see them once added, a round
// trip after the write. A crash loses the counts still queued (the writes of
// about one round trip), as a crash between a write and its count did.
type countQueue struct {
	mu     sync.Mutex
	deltas map[string]int
	idle   chan struct{} // closed when the flusher has stopped; nil while none has run
}

// countReports queues deltas (see moved) for the reports_ counters of the
// STATS item, and starts the flusher unless it runs.
func (s *Store) countReports(deltas map[string]int) {
	q := s.reportCounts
	q.mu.Lock()
	defer q.mu.Unlock()
	for name, d := range deltas {
		if d != 0 {
			if q.deltas == nil {
				q.deltas = map[string]int{}
			}
			q.deltas[name] += d
		}
	}
	if len(q.deltas) == 0 || (q.idle != nil && !closed(q.idle)) {
		return
	}
	idle := make(chan struct{})
	q.idle = idle
	go s.flushReportCounts(idle)
}

// flushReportCounts adds the queued report counts to the STATS item until none
// are queued, then closes idle.
func (s *Store) flushReportCounts(idle chan struct{}) {
	q := s.reportCounts
	for {
		q.mu.Lock()
		deltas := q.deltas
		q.deltas = nil
		if len(deltas) == 0 {
			close(idle)
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
		s.add(ctx, skCounterStats, "", deltas)
		cancel()
	}
}

// settleReportCounts waits until the report counts queued before it was
// called have been added (or failed to be), or ctx ends.
func (s *Store) settleReportCounts(ctx context.Context) error {
	q := s.reportCounts
	q.mu.Lock()
	idle := q.idle
	q.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("dynamo: count reports: %w: %w", errUnavailable, ctx.Err())
	}
}

// closed reports whether ch is closed.
func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// moved returns the deltas of one item moving from the state from to the
// state to ("" for none) under prefix.
func moved(prefix, from, to string) map[string]int {
	if from == to {
		return nil
	}
	d := map[string]int{}
	if from != "" {
		d[prefix+from]--
	}
	if to != "" {
		d[prefix+to]++
	}
	return d
}

// counters reads the counter item with sort key sk with a strongly
// consistent read and returns its counts under prefix, by the rest of their
// names.
func (s *Store) counters(ctx context.Context, op, sk, prefix string) (map[string]int, error) {
	item, err := s.get(ctx, op, pkCounter, sk)
	if err != nil {
		return nil, err
	}
	return countsOf(op, item, prefix)
}

// countsOf returns the counts of the counter item under prefix, by the rest
// of their names.
func countsOf(op string, item map[string]types.AttributeValue, prefix string) (map[string]int, error) {
	var all map[string]any
	if err := unmarshal(item, &all); err != nil {
		return nil, fmt.Errorf("dynamo: %s: %w: %w", op, errCorrupt, err)
	}
	out := map[string]int{}
	for name, v := range all {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			f, ok := v.(float64)
			if !ok {
				return nil, fmt.Errorf("dynamo: %s: counter %s is no number: %w", op, name, errCorrupt)
			}
			out[rest] = int(f)
		}
	}
	return out, nil
}

// CountLinks returns the number of the view's links in each state, as
// tokens.LinkCounter specifies, from the counters that every link write
// keeps (one strongly consistent read). It returns an EUNAVAILABLE error when
// DynamoDB cannot be reached, and an EINTERNAL error when the counters are
// corrupt.
func (s *Store) CountLinks(ctx context.Context) (map[tokens.State]int, error) {
	c, err := s.counters(ctx, "count links", s.keys.stats, countLinks)
	if err != nil {
		return nil, err
	}
	out := map[tokens.State]int{}
	for name, n := range c {
		st, err := tokens.ParseState(name)
		if err != nil {
			return nil, fmt.Errorf("dynamo: count links: unknown state %q: %w", name, errCorrupt)
		}
		out[st] = n
	}
	return out, nil
}

// CountReports returns the number of reports in each state, as
// reports.Counter specifies, from the counters that every report write keeps,
// once the counts this process queued are added (see countQueue).
// Reports that DynamoDB's time to live removes are not subtracted (it is a
// backstop to DeleteFinishedReports). They are the table's, the same through
// every view. Errors are as for CountLinks.
func (s *Store) CountReports(ctx context.Context) (map[reports.State]int, error) {
	if err := s.settleReportCounts(ctx); err != nil {
		return nil, err
	}
	c, err := s.counters(ctx, "count reports", skCounterStats, countReports)
	if err != nil {
		return nil, err
	}
	out := map[reports.State]int{}
	for name, n := range c {
		st, err := reports.ParseState(name)
		if err != nil {
			return nil, fmt.Errorf("dynamo: count reports: unknown state %q: %w", name, errCorrupt)
		}
		out[st] = n
	}
	return out, nil
}
