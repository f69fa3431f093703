package bolt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ tokens.ClaimSweeper = (*Store)(nil)

// sweepBatch is how many claims one write transaction of DeleteExpiredClaims
// looks at, so that a large "codes" bucket never holds bbolt's single writer
// lock for long: hand-overs and token refreshes write between two batches.
// Tests make it smaller.
var sweepBatch = 1000

// DeleteExpiredClaims removes every code claim that expired before before, of
// every skill (the sweep is the file's, the same in every view), as
// tokens.ClaimSweeper specifies, looking at sweepBatch claims per write
// transaction. Claims are keyed by code hash, not by expiry, so each sweep reads
// every skill's whole "codes" bucket; each holds about an hour of hand-overs.
//
// It returns an EUNAVAILABLE error when the database cannot be written or ctx
// ends between two batches (the batches before stay removed), and an EINTERNAL
// error when stored claims are corrupt: those stay, the others are removed.
func (s *Store) DeleteExpiredClaims(ctx context.Context, before time.Time) (int, error) {
	skills, err := s.Skills(ctx)
	if err != nil {
		return 0, fmt.Errorf("bolt: delete expired claims: %w", err)
	}
	removed, corrupt := 0, 0
	for _, skill := range skills {
		n, bad, err := s.ForSkill(skill).deleteExpiredClaims(ctx, before)
		removed, corrupt = removed+n, corrupt+bad
		if err != nil {
			return removed, err
		}
	}
	if corrupt > 0 {
		return removed, fmt.Errorf("bolt: delete expired claims: %d stored claims are corrupt and stay", corrupt)
	}
	return removed, nil
}

// deleteExpiredClaims removes the expired claims of the view's skill, as
// DeleteExpiredClaims does, and returns how many it removed and how many
// corrupt claims it left.
func (s *Store) deleteExpiredClaims(ctx context.Context, before time.Time) (removed, corrupt int, err error) {
	var after []byte // the last key of the batch before; nil for the first
	for {
		var dead [][]byte
		var last []byte
		bad := 0
		err := s.update(ctx, "delete expired claims", func(tx *bbolt.Tx) error {
			b := s.bucket(tx, bucketCodes)
			if b == nil {
				return nil // no claims: last stays nil, the skill is done
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for n := 0; k != nil && n < sweepBatch; k, v = c.Next() {
				n++
				last = bytes.Clone(k)
				claim, err := decodeClaim(v)
				switch {
				case err != nil:
					bad++
				case claim.Expires.Before(before):
					dead = append(dead, last)
				}
			}
			// Deleting under a cursor that moves on can skip keys; delete after.
			for _, k := range dead {
				if err := b.Delete(k); err != nil {
					return fmt.Errorf("bolt: delete expired claims: %w: %w", errUnavailable, err)
				}
			}
			if k == nil {
				last = nil // the bucket is done
			}
			return nil
		})
		if err != nil {
			return removed, corrupt, err
		}
		removed, corrupt = removed+len(dead), corrupt+bad
		if last == nil {
			return removed, corrupt, nil
		}
		after = last
	}
}
