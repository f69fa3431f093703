package bolt

import (
	"context"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var (
	_ tokens.LinkCounter = (*Store)(nil)
	_ reports.Counter    = (*Store)(nil)
)

// CountLinks returns the number of links of the view's skill in each state, as
// tokens.LinkCounter specifies, counted in one read transaction: bbolt serves one process, so a
// count is as fresh as the file, and reading the links bucket costs a few
// milliseconds per ten thousand links. It returns an EUNAVAILABLE error when
// the database cannot be read, and an EINTERNAL error when a record is
// corrupt.
func (s *Store) CountLinks(ctx context.Context) (map[tokens.State]int, error) {
	counts := map[tokens.State]int{}
	err := s.view(ctx, "count links", func(tx *bbolt.Tx) error {
		b := s.bucket(tx, bucketLinks)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			l, err := decodeLink(v)
			if err != nil {
				return err
			}
			counts[l.State]++
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// CountReports returns the number of reports in each state, of every skill
// and kind (the outbox is the file's, the same in every view), as
// reports.Counter specifies, counted in one read transaction like
// CountLinks. It returns an EUNAVAILABLE error when the database cannot be
// read, and an EINTERNAL error when a record is corrupt.
func (s *Store) CountReports(ctx context.Context) (map[reports.State]int, error) {
	counts := map[reports.State]int{}
	err := s.view(ctx, "count reports", func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketReports).ForEach(func(_, v []byte) error {
			r, err := decodeReport(v)
			if err != nil {
				return err
			}
			counts[r.State]++
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}
