package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ tokens.Leaser = (*Store)(nil)

// leaseRecord is how a refresh lease is kept in the "leases" bucket of its
// skill, keyed by user id. A released lease is deleted; an expired one stays until it is taken
// over.
type leaseRecord struct {
	Format int    `json:"format"`
	Owner  string `json:"owner"`
	Until  string `json:"until"`
}

// AcquireLease takes the refresh lease of userID in the view's skill for owner,
// as tokens.Leaser specifies, in one write transaction. In one process bbolt's
// lock already serializes writers; the lease keeps the store interchangeable
// with the shared ones. Each skill has its own leases, as its own links.
//
// It returns an EINVALID error when tokens.ValidateLease refuses the arguments,
// userID is longer than a bbolt key or the skill id longer than a bucket name,
// an EUNAVAILABLE error when the database cannot be written, and an EINTERNAL
// error when the stored lease is corrupt.
func (s *Store) AcquireLease(ctx context.Context, userID, owner string, now, until time.Time) (bool, error) {
	if err := tokens.ValidateLease(userID, owner); err != nil {
		return false, err
	}
	if len(userID) > bbolt.MaxKeySize {
		return false, tokens.Errorf(tokens.EINVALID, "user id longer than %d bytes", bbolt.MaxKeySize)
	}
	var held bool
	err := s.update(ctx, "acquire lease", func(tx *bbolt.Tx) error {
		b, err := s.writableBucket(tx, bucketLeases)
		if err != nil {
			return err
		}
		key := []byte(userID)
		if v := b.Get(key); v != nil {
			l, err := decodeLease(v)
			if err != nil {
				return err
			}
			if l.Owner != owner && !l.Until.Before(now) {
				return nil // another owner's lease stands
			}
		}
		v, err := json.Marshal(leaseRecord{Format: recordFormat, Owner: owner, Until: formatTime(until)})
		if err != nil {
			return fmt.Errorf("bolt: encode lease: %w", err)
		}
		if err := b.Put(key, v); err != nil {
			return fmt.Errorf("bolt: acquire lease: %w: %w", errUnavailable, err)
		}
		held = true
		return nil
	})
	return held, err
}

// ReleaseLease removes the refresh lease of userID in the view's skill if owner
// holds it, as tokens.Leaser specifies, in one write transaction. It returns an EUNAVAILABLE
// error when the database cannot be written, and an EINTERNAL error when the
// stored lease is corrupt.
func (s *Store) ReleaseLease(ctx context.Context, userID, owner string) error {
	return s.update(ctx, "release lease", func(tx *bbolt.Tx) error {
		b := s.bucket(tx, bucketLeases)
		if b == nil {
			return nil
		}
		key := []byte(userID)
		v := b.Get(key)
		if v == nil {
			return nil
		}
		l, err := decodeLease(v)
		if err != nil || l.Owner != owner {
			return err
		}
		if err := b.Delete(key); err != nil {
			return fmt.Errorf("bolt: release lease: %w: %w", errUnavailable, err)
		}
		return nil
	})
}

// lease is a decoded leaseRecord.
type lease struct {
	Owner string
	Until time.Time
}

func decodeLease(v []byte) (lease, error) {
	var r leaseRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return lease{}, fmt.Errorf("bolt: decode lease: %w", err)
	}
	if r.Format != recordFormat {
		return lease{}, fmt.Errorf("bolt: decode lease: unknown record format %d", r.Format)
	}
	until, err := parseTime(r.Until)
	if err != nil {
		return lease{}, fmt.Errorf("bolt: decode lease: until: %w", err)
	}
	return lease{Owner: r.Owner, Until: until}, nil
}
