package dynamo

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// CreateReport stores r as reports.Store.CreateReport says. It takes r.Seq from
// the report counter (so a duplicate may use up a number: Seq grows, with gaps),
// sets r.Version, and writes the report with the condition that its key is
// free; when that fails, a consistent read returns the report that holds it.
// Beyond the port's errors, it returns an EINVALID error for a user id longer
// than MaxUserIDLen bytes or not UTF-8.
func (s *Store) CreateReport(ctx context.Context, r *reports.Report) (*reports.Report, bool, error) {
	if err := r.CheckStorable(); err != nil {
		return nil, false, fmt.Errorf("dynamo: create report: %w", err)
	}
	if err := checkUserID(r.UserID); err != nil {
		return nil, false, err
	}
	// The report that holds the key may be removed between the failed write
	// and the read; then the write is tried again.
	for range 3 {
		seq, err := s.next(ctx, "create report: next sequence", skCounterReports)
		if err != nil {
			return nil, false, err
		}
		rec := *r
		rec.Seq = seq
		version := seq << versionShift
		item, err := encodeReport(&rec, version, s.now())
		if err != nil {
			return nil, false, err
		}
		ok, err := s.put(ctx, "create report", item, expression.AttributeNotExists(expression.Name(AttrPK)))
		switch {
		case err != nil:
			return nil, false, err
		case ok:
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
	return decodeReport(item)
}

// PutReport writes r as reports.Store.PutReport says, in one write on the
// condition that the stored version equals r.Version, then sets r.Version to
// the stored version plus one. It keeps the index in step: a PENDING report is
// listed under its user, a report in an end state under its FinishedAt, with a
// time to live thirty days after it. When the condition fails, a consistent
// read tells a version conflict from a report that is gone.
func (s *Store) PutReport(ctx context.Context, r *reports.Report) error {
	if err := r.CheckStorable(); err != nil {
		return fmt.Errorf("dynamo: put report: %w", err)
	}
	version := r.Version + 1
	item, err := encodeReport(r, version, s.now())
	if err != nil {
		return err
	}
	ok, err := s.put(ctx, "put report", item, expression.Name(attrVersion).Equal(expression.Value(r.Version)))
	switch {
	case err != nil:
		return err
	case ok:
		r.Version = version
		return nil
	}
	stored, err := s.getReport(ctx, "put report: read stored", r.MessageID)
	switch {
	case err != nil:
		return err
	case stored == nil:
		return fmt.Errorf("dynamo: put report %q: %w", r.MessageID, reports.ErrReportNotFound)
	}
	return fmt.Errorf("dynamo: put report %q: version %d is not the stored one: %w", r.MessageID, r.Version, reports.ErrVersionConflict)
}

// PendingReports returns due reports as reports.Store.PendingReports says, in
// the order of their users and Seq, from the index IndexGSI1, which is
// eventually consistent. It filters on DynamoDB's side, reading the pending
// reports that are not due on the way.
func (s *Store) PendingReports(ctx context.Context, now time.Time, limit int) ([]*reports.Report, error) {
	limit = tokens.PageSize(limit)
	due := expression.Or(
		expression.AttributeNotExists(expression.Name(attrNextAttemptAt)),
		expression.Name(attrNextAttemptAt).LessThanEqual(expression.Value(unixNanos(now))),
	)
	items, err := s.query(ctx, "pending reports", expression.Key(AttrGSI1PK).Equal(expression.Value(gsiPending)), &due, limit)
	if err != nil {
		return nil, err
	}
	return decodeReports(items)
}

// UserPendingReports returns the pending reports of userID as
// reports.Store.UserPendingReports says, from the index IndexGSI1, which is
// eventually consistent.
func (s *Store) UserPendingReports(ctx context.Context, userID string) ([]*reports.Report, error) {
	if checkUserID(userID) != nil {
		return nil, nil // no report of such a user can be stored
	}
	kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiPending)).
		And(expression.Key(AttrGSI1SK).BeginsWith(pendingPrefix(userID)))
	items, err := s.query(ctx, "user pending reports", kc, nil, 0)
	if err != nil {
		return nil, err
	}
	return decodeReports(items)
}

// DeleteFinishedReports removes finished reports as
// reports.Store.DeleteFinishedReports says: it finds them in the index
// IndexGSI1 and removes each (up to deleteConcurrency at a time) with the
// condition that it is still finished before before. Reports that DynamoDB's
// time to live removed first are not counted. When it fails, the reports
// removed until then stay removed.
func (s *Store) DeleteFinishedReports(ctx context.Context, before time.Time) (int, error) {
	end := expression.Value(sortable(unixNanos(before)))
	kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiFinished)).And(expression.Key(AttrGSI1SK).LessThan(end))
	items, err := s.query(ctx, "delete finished reports", kc, nil, 0)
	if err != nil {
		return 0, err
	}
	still := expression.Name(AttrGSI1PK).Equal(expression.Value(gsiFinished)).And(expression.Name(AttrGSI1SK).LessThan(end))
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteConcurrency)
	for _, item := range items {
		pk, ok := item[AttrPK].(*types.AttributeValueMemberS)
		if !ok {
			g.Go(func() error {
				return fmt.Errorf("dynamo: delete finished reports: item without %s: %w", AttrPK, errCorrupt)
			})
			break
		}
		g.Go(func() error {
			removed, err := s.remove(gctx, "delete finished report", pk.Value, skReport, still)
			if removed {
				n.Add(1)
			}
			return err
		})
	}
	err = g.Wait()
	return int(n.Load()), err
}

// deleteConcurrency is how many reports DeleteFinishedReports removes at once.
const deleteConcurrency = 16

// decodeReports decodes report items, in order.
func decodeReports(items []map[string]types.AttributeValue) ([]*reports.Report, error) {
	out := make([]*reports.Report, 0, len(items))
	for _, item := range items {
		r, err := decodeReport(item)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
