package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// CreateReport stores r as reports.Store.CreateReport says. It takes r.Seq in
// the table's order (see clockOrder: from the process's clock, or from the
// report counter; a duplicate may use up a number, so Seq grows with gaps),
// sets r.Version, and writes the report with the condition that its key is
// free; when that fails, a consistent read returns the report that holds it.
// A new report thus costs one request in clock order, the conditional
// PutItem, and two in counter order, the counter's UpdateItem first; its
// count is added afterwards, in the background (see countQueue). Reports are
// the table's, the same through every view, whatever their SkillID. Beyond
// the port's errors, it returns an EINVALID error for a user id longer than
// MaxUserIDLen bytes or not UTF-8, or a lane (see reports.Lane) that does not
// fit the index's sort key once escaped: the default skill's profile reports
// of every such user id fit, another lane of a user id of nearly
// MaxUserIDLen bytes may not; and an EINTERNAL error when the report counter
// holds neither order.
func (s *Store) CreateReport(ctx context.Context, r *reports.Report) (*reports.Report, bool, error) {
	if err := r.CheckStorable(); err != nil {
		return nil, false, fmt.Errorf("dynamo: create report: %w", err)
	}
	if err := checkReport(r); err != nil {
		return nil, false, err
	}
	// The report that holds the key may be removed between the failed write
	// and the read; then the write is tried again.
	for range 3 {
		seq, version, err := s.nextSeq(ctx)
		if err != nil {
			return nil, false, err
		}
		rec := *r
		rec.Seq = seq
		item, err := encodeReport(&rec, version, s.now())
		if err != nil {
			return nil, false, err
		}
		ok, err := s.put(ctx, "create report", item, expression.AttributeNotExists(expression.Name(AttrPK)))
		switch {
		case err != nil:
			return nil, false, err
		case ok:
			s.countReports(moved(countReports, "", r.State.String()))
			r.Seq, r.Version = seq, version
			return r, true, nil
		}
		existing, err := s.getReport(ctx, "create report: read existing", r.MessageID)
		switch {
		case err != nil:
			return nil, false, err
		case existing != nil:
			return existing, false, nil
		}
	}
	return nil, false, fmt.Errorf("dynamo: create report %q: the report kept changing: %w", r.MessageID, errUnavailable)
}

// GetReport returns the report with messageID as reports.Store.GetReport says,
// with a strongly consistent read. A message id that reports.CheckMessageID
// refuses is not looked up: DynamoDB would refuse some as keys.
func (s *Store) GetReport(ctx context.Context, messageID string) (*reports.Report, error) {
	if reports.CheckMessageID(messageID) != nil {
		return nil, fmt.Errorf("dynamo: get report %q: %w", messageID, reports.ErrReportNotFound)
	}
	r, err := s.getReport(ctx, "get report", messageID)
	switch {
	case err != nil:
		return nil, err
	case r == nil:
		return nil, fmt.Errorf("dynamo: get report %q: %w", messageID, reports.ErrReportNotFound)
	}
	return r, nil
}

// getReport returns the report with messageID, or nil when there is none.
func (s *Store) getReport(ctx context.Context, op, messageID string) (*reports.Report, error) {
	item, err := s.get(ctx, op, pkReport+messageID, skReport)
	if err != nil || item == nil {
		return nil, err
	}
	s.flushStale(ctx, pkReport+messageID, skReport, item)
	return s.decodeReport(item)
}

// PutReport writes r as reports.Store.PutReport says, in one write on the
// condition that the stored version equals r.Version, then sets r.Version to
// the stored version plus one. It keeps the index in step: a PENDING report is
// listed under its lane, a report in an end state under its FinishedAt, with
// a time to live thirty days after it. When the condition fails, a consistent
// read tells a version conflict from a report that is gone. A DELIVERED report
// raises its lane's delivered mark first, in a write of its own (see
// ClaimDelivery), so that no crash leaves a delivered report without its mark.
func (s *Store) PutReport(ctx context.Context, r *reports.Report, events ...tokens.Event) error {
	if err := r.CheckStorable(); err != nil {
		return fmt.Errorf("dynamo: put report: %w", err)
	}
	if err := checkEvents(events); err != nil {
		return err
	}
	if err := checkReport(r); err != nil {
		// No such report was stored: the version check would fail.
		return fmt.Errorf("dynamo: put report %q: %w", r.MessageID, reports.ErrReportNotFound)
	}
	if r.State == reports.StateDelivered && r.Seq > 0 {
		if err := s.markDelivered(ctx, r.Lane(), r.Seq); err != nil {
			return err
		}
	}
	version := r.Version + 1
	item, err := encodeReport(r, version, s.now())
	if err != nil {
		return err
	}
	ob, err := withOutbox(item, events, s.now())
	if err != nil {
		return err
	}
	pk := pkReport + r.MessageID
	cond := expression.Name(attrVersion).Equal(expression.Value(r.Version)).
		And(expression.AttributeNotExists(expression.Name(attrOutbox)))
	for range 3 {
		old, ok, err := s.putOld(ctx, "put report", item, cond)
		if err != nil {
			return err
		}
		if ok {
			s.countReports(moved(countReports, stateOf(old), r.State.String()))
			r.Version = version
			_ = s.flush(ctx, pk, skReport, ob) // as in PutLink
			return nil
		}
		exists, flushed, err := s.recover(ctx, pk, skReport)
		switch {
		case err != nil:
			return err
		case !exists:
			return fmt.Errorf("dynamo: put report %q: %w", r.MessageID, reports.ErrReportNotFound)
		case !flushed:
			return fmt.Errorf("dynamo: put report %q: version %d is not the stored one: %w", r.MessageID, r.Version, reports.ErrVersionConflict)
		}
	}
	return fmt.Errorf("dynamo: put report %q: the report kept changing: %w", r.MessageID, errUnavailable)
}

// DueReports returns one pending report of each lane that is due, as
// reports.Store.DueReports says: the newest of a lane whose kind Supersedes,
// the oldest of the others, in the order of their lanes, from the index
// IndexGSI1, which is eventually consistent. It reads the pending reports in
// pages of duePage items, by escaped lane and Seq. A page starts at a lane's
// first report, so a lane's first report in a page is its oldest; its last
// one is its newest unless the page ends there, and then one more query
// (descending, one item) reads the newest. The next page starts after the
// lane: a lane's backlog costs at most one page and one query, however long
// it is.
func (s *Store) DueReports(ctx context.Context, now time.Time, limit int) ([]*reports.Report, error) {
	limit = tokens.PageSize(limit)
	var due []*reports.Report
	after := "" // the gsi1sk after which the next page starts; "" for the first
	for len(due) < limit {
		kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiPending))
		if after != "" {
			kc = kc.And(expression.Key(AttrGSI1SK).GreaterThan(expression.Value(after)))
		}
		items, more, err := s.queryPage(ctx, "due reports", kc, duePage, true)
		if err != nil {
			return nil, err
		}
		rs, err := s.decodeReports(items)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(rs) && len(due) < limit; {
			lane, j := rs[i].Lane(), i
			for j+1 < len(rs) && rs[j+1].Lane() == lane {
				j++
			}
			next := rs[i] // the oldest
			if rs[i].Kind.Supersedes() {
				next = rs[j]
				if j == len(rs)-1 && more {
					if next, err = s.newestPending(ctx, lane); err != nil {
						return nil, err
					}
				}
			}
			if next != nil && !next.NextAttemptAt.After(now) {
				due = append(due, next)
			}
			// Every gsi1sk of the lane is its prefix and digits, which sort
			// before ':'; every other lane's sorts either before the prefix or
			// after this.
			after = pendingPrefix(lane) + ":"
			i = j + 1
		}
		if !more {
			break
		}
	}
	return due, nil
}

// duePage is how many pending reports DueReports reads at once.
const duePage = 100

// newestPending returns the pending report of lane with the highest Seq, or
// nil when there is none, from the index IndexGSI1.
func (s *Store) newestPending(ctx context.Context, lane string) (*reports.Report, error) {
	kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiPending)).
		And(expression.Key(AttrGSI1SK).BeginsWith(pendingPrefix(lane)))
	items, _, err := s.queryPage(ctx, "due reports: newest of a lane", kc, 1, false)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	return s.decodeReport(items[0])
}

// queryPage reads one page of at most limit items of the index IndexGSI1
// that match kc, ascending by gsi1sk when forward is true, and reports whether
// more items follow.
func (s *Store) queryPage(ctx context.Context, op string, kc expression.KeyConditionBuilder, limit int32, forward bool) ([]map[string]types.AttributeValue, bool, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: %s: build query: %w", op, err)
	}
	out, err := s.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 s.table,
		IndexName:                 aws.String(IndexGSI1),
		KeyConditionExpression:    expr.KeyCondition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		Limit:                     aws.Int32(limit),
		ScanIndexForward:          aws.Bool(forward),
	})
	if err != nil {
		return nil, false, s.fail(op, err)
	}
	return out.Items, len(out.LastEvaluatedKey) > 0, nil
}

// LanePendingReports returns the pending reports of lane as
// reports.Store.LanePendingReports says, from the index IndexGSI1, which is
// eventually consistent: one range of its PENDING partition.
func (s *Store) LanePendingReports(ctx context.Context, lane string) ([]*reports.Report, error) {
	if lane == "" || checkLane(lane) != nil {
		return nil, nil // no report of such a lane can be stored
	}
	kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiPending)).
		And(expression.Key(AttrGSI1SK).BeginsWith(pendingPrefix(lane)))
	items, err := s.query(ctx, "lane pending reports", kc, nil, 0)
	if err != nil {
		return nil, err
	}
	return s.decodeReports(items)
}

// PendingReports returns a page of the pending reports as
// reports.PendingLister.PendingReports says, from the index IndexGSI1, which
// is eventually consistent: its PENDING partition, by escaped lane and Seq,
// after the report whose gsi1sk and message id the cursor holds (see
// pendingCursor). The message id tells apart reports of one lane with one
// Seq, which processes in clock order may hand out (see clockOrder). It
// reads one item more than the page, to know whether another page follows.
func (s *Store) PendingReports(ctx context.Context, cursor string, limit int) (reports.ReportPage, error) {
	limit = tokens.PageSize(limit)
	after, err := decodePendingCursor(cursor)
	if err != nil {
		return reports.ReportPage{}, err
	}
	kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiPending))
	var start map[string]types.AttributeValue
	switch {
	case after.MessageID != "":
		start = key(pkReport+after.MessageID, skReport)
		start[AttrGSI1PK] = &types.AttributeValueMemberS{Value: gsiPending}
		start[AttrGSI1SK] = &types.AttributeValueMemberS{Value: after.SortKey}
	case after.SortKey != "":
		// A cursor of an earlier version, the gsi1sk alone.
		kc = kc.And(expression.Key(AttrGSI1SK).GreaterThan(expression.Value(after.SortKey)))
	}
	items, err := s.query(ctx, "pending reports", kc, start, limit+1)
	if err != nil {
		return reports.ReportPage{}, err
	}
	rs, err := s.decodeReports(items)
	if err != nil {
		return reports.ReportPage{}, err
	}
	var page reports.ReportPage
	if len(rs) > limit {
		rs = rs[:limit]
		last := rs[limit-1]
		page.Next = pendingCursor{SortKey: pendingPrefix(last.Lane()) + sortable(last.Seq), MessageID: last.MessageID}.encode()
	}
	page.Reports = rs
	return page, nil
}

// pendingCursor is where a page of PendingReports ends: the gsi1sk and the
// message id of its last report. It travels as base64url of its JSON; a
// cursor of an earlier version is the gsi1sk alone, never JSON, as it ends
// in digits.
type pendingCursor struct {
	SortKey   string `json:"k"`
	MessageID string `json:"m"`
}

// encode returns c as a cursor.
func (c pendingCursor) encode() string {
	b, _ := json.Marshal(c) // two strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePendingCursor returns the position that cursor holds: none for "",
// SortKey alone for a cursor of an earlier version. It returns an EINVALID
// error for a cursor this store did not give: one whose gsi1sk is not a
// lane's prefix and a Seq, or, in the JSON form, without a message id.
func decodePendingCursor(cursor string) (pendingCursor, error) {
	refused := tokens.Errorf(tokens.EINVALID, "the cursor of pending reports is not one this store gave")
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) > 2*maxPartitionKey || !utf8.Valid(b) {
		return pendingCursor{}, refused
	}
	var c pendingCursor
	switch {
	case len(b) == 0:
		return c, nil
	case json.Unmarshal(b, &c) == nil:
		if reports.CheckMessageID(c.MessageID) != nil {
			return pendingCursor{}, refused
		}
	default:
		c = pendingCursor{SortKey: string(b)}
	}
	if !pendingSortKey(c.SortKey) {
		return pendingCursor{}, refused
	}
	return c, nil
}

// pendingSortKey reports whether k has the shape of a pending report's
// gsi1sk: a lane's prefix (pendingPrefix) and its Seq (sortable).
func pendingSortKey(k string) bool {
	if len(k) > maxSortKey || len(k) < sortableDigits+2 || k[len(k)-sortableDigits-1] != '#' {
		return false
	}
	for _, c := range []byte(k[len(k)-sortableDigits:]) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// DeleteFinishedReports removes finished reports as
// reports.Store.DeleteFinishedReports says: it finds them in the index
// IndexGSI1 and removes each (up to deleteConcurrency at a time) with the
// condition that it is still finished before before, the events of its last
// change stored first. Reports that DynamoDB's time to live removed first are
// not counted. When it fails, the reports removed until then stay removed.
//
// It also flushes the outboxes older than outboxGrace of the reports that
// finished in the last finishedFlushWindow (and not before before): a
// report's last write, which ends it, is the commit of its events (see the
// package documentation), and in normal running nothing writes it again, so
// when that write's flush fails, or the process dies after it, only this
// sweep (or a GetReport) stores the events and creates their webhooks. It
// finds those reports in the index with a filter on the outbox, which
// shortens the answer but not the reads, and flushes each after reading it
// again consistently. The flush is tried even when the removal fails; the
// errors of both are returned, joined.
func (s *Store) DeleteFinishedReports(ctx context.Context, before time.Time) (int, error) {
	n, err := s.deleteFinished(ctx, before)
	from := s.now().Add(-finishedFlushWindow)
	if before.After(from) {
		from = before // the reports finished before before were flushed as they were removed
	}
	return n, errors.Join(err, s.flushFinished(ctx, from))
}

// finishedFlushWindow is how long after a report finished DeleteFinishedReports
// still looks for its unflushed outbox. The deliverer runs the sweep once an
// hour and when it starts (reports.Deliverer.Run), so an outbox left behind
// meets about six sweeps: enough for a few failed or missed ones. Its events
// are then at most this old, well within the 24 hours a webhook is retried
// after its event occurred (events.DefaultDeadline), so their webhooks are
// still sent. Every sweep reads the index entries of the reports finished in
// the window: a longer window costs reads for every report, a shorter one
// fewer chances.
const finishedFlushWindow = 6 * time.Hour

// deleteFinished removes the reports finished before before, as
// DeleteFinishedReports says, and returns how many it removed.
func (s *Store) deleteFinished(ctx context.Context, before time.Time) (int, error) {
	end := expression.Value(sortable(unixNanos(before)))
	kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiFinished)).And(expression.Key(AttrGSI1SK).LessThan(end))
	items, err := s.query(ctx, "delete finished reports", kc, nil, 0)
	if err != nil {
		return 0, err
	}
	still := expression.Name(AttrGSI1PK).Equal(expression.Value(gsiFinished)).And(expression.Name(AttrGSI1SK).LessThan(end)).
		And(expression.AttributeNotExists(expression.Name(attrOutbox)))
	var n atomic.Int64
	err = eachReport(ctx, "delete finished reports", items, func(ctx context.Context, item map[string]types.AttributeValue, pk string) error {
		if item[attrOutbox] != nil {
			// The events of its last change go to the audit trail first.
			if _, _, err := s.recover(ctx, pk, skReport); err != nil {
				return err
			}
		}
		old, removed, err := s.removeIf(ctx, "delete finished report", pk, skReport, still)
		if removed {
			n.Add(1)
			s.countReports(moved(countReports, stateOf(old), ""))
		}
		return err
	})
	return int(n.Load()), err
}

// eachReport calls f with each of items, report items read from the index,
// and its table key pk, up to deleteConcurrency at a time; it returns the
// first error, and an EINTERNAL one for an item without its key.
func eachReport(ctx context.Context, op string, items []map[string]types.AttributeValue, f func(ctx context.Context, item map[string]types.AttributeValue, pk string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteConcurrency)
	for _, item := range items {
		pk, ok := item[AttrPK].(*types.AttributeValueMemberS)
		if !ok {
			g.Go(func() error {
				return fmt.Errorf("dynamo: %s: item without %s: %w", op, AttrPK, errCorrupt)
			})
			break
		}
		g.Go(func() error { return f(gctx, item, pk.Value) })
	}
	return g.Wait()
}

// flushFinished flushes the outboxes older than outboxGrace of the reports
// that finished at or after from (up to deleteConcurrency at a time), found
// in the index IndexGSI1 and read again with a strongly consistent read, so
// that a stale index never flushes an outbox that is gone.
func (s *Store) flushFinished(ctx context.Context, from time.Time) error {
	kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiFinished)).
		And(expression.Key(AttrGSI1SK).GreaterThanEqual(expression.Value(sortable(unixNanos(from)))))
	b := expression.NewBuilder().WithKeyCondition(kc).WithFilter(expression.AttributeExists(expression.Name(attrOutbox)))
	items, err := s.queryWhere(ctx, "flush finished reports", b, nil, 0)
	if err != nil {
		return err
	}
	return eachReport(ctx, "flush finished reports", items, func(ctx context.Context, item map[string]types.AttributeValue, pk string) error {
		if ob, err := outboxOf(item); err == nil && !s.stale(ob) {
			return nil // its writer is flushing it
		}
		item, err := s.get(ctx, "flush finished report", pk, skReport)
		if err != nil || item == nil {
			return err
		}
		ob, err := outboxOf(item)
		if err != nil || !s.stale(ob) {
			return err
		}
		return s.flush(ctx, pk, skReport, ob)
	})
}

// checkReport returns an EINVALID error when the store cannot keep r's user
// id or lane in its keys.
func checkReport(r *reports.Report) error {
	if err := checkUserID(r.UserID); err != nil {
		return err
	}
	return checkLane(r.Lane())
}

// deleteConcurrency is how many reports DeleteFinishedReports removes at once.
const deleteConcurrency = 16

// decodeReports decodes report items, in order, as decodeReport does.
func (s *Store) decodeReports(items []map[string]types.AttributeValue) ([]*reports.Report, error) {
	out := make([]*reports.Report, 0, len(items))
	for _, item := range items {
		r, err := s.decodeReport(item)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// decodeReport decodes a report item read from the table, and moves the
// clock of clock order past its Seq, so that a process whose clock lags
// another's still orders the reports it accepts after those it has seen.
func (s *Store) decodeReport(item map[string]types.AttributeValue) (*reports.Report, error) {
	r, err := decodeReport(item)
	if err != nil {
		return nil, err
	}
	s.order.observe(r.Seq)
	return r, nil
}
