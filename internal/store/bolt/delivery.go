package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// bucketDeliveries holds each user's delivered mark, keyed by user id. Files
// made before it existed lack it: PutReport creates it, and reads take its
// absence for no mark.
var bucketDeliveries = []byte("deliveries")

// deliveryRecord is how a user's delivered mark is kept.
type deliveryRecord struct {
	Format    int   `json:"format"`
	Delivered int64 `json:"delivered"`
}

// deliveryClaims are the users' delivery claims. They are kept in memory:
// bbolt's file lock keeps every other process out, so the claims of this
// process are all the claims there are, and a claim need not outlive it (one
// that ends with its process has run out). It saves the deliverer two disk
// writes per attempt. The zero value is ready for use.
type deliveryClaims struct {
	mu     sync.Mutex
	claims map[string]deliveryClaim // user id → claim
}

// deliveryClaim is one user's delivery claim.
type deliveryClaim struct {
	owner string
	until time.Time
}

// ClaimDelivery takes userID's delivery claim for owner as
// reports.Store.ClaimDelivery says: the claim in memory (see deliveryClaims),
// the delivered mark read from the file.
//
// It returns an EINVALID error when reports.CheckDeliveryClaim refuses the
// arguments or userID is longer than a bbolt key, an EUNAVAILABLE error when
// the database cannot be read, and an EINTERNAL error when the stored mark is
// corrupt.
func (s *Store) ClaimDelivery(ctx context.Context, userID, owner string, now, until time.Time) (int64, bool, error) {
	if err := reports.CheckDeliveryClaim(userID, owner); err != nil {
		return 0, false, err
	}
	if len(userID) > bbolt.MaxKeySize {
		return 0, false, tokens.Errorf(tokens.EINVALID, "user id longer than %d bytes", bbolt.MaxKeySize)
	}
	var mark int64
	var held bool
	err := s.view(ctx, "claim delivery", func(tx *bbolt.Tx) error {
		rec, err := readDelivery(tx, userID)
		if err != nil {
			return err
		}
		if !s.deliveries.take(userID, owner, now, until) {
			return nil // another owner's claim stands
		}
		mark, held = rec.Delivered, true
		return nil
	})
	return mark, held, err
}

// ReleaseDelivery ends owner's delivery claim of userID as
// reports.Store.ReleaseDelivery says, in memory. It always returns nil.
func (s *Store) ReleaseDelivery(_ context.Context, userID, owner string) error {
	s.deliveries.release(userID, owner)
	return nil
}

// take gives userID's claim to owner until until, unless another owner's
// claim stands at now, and reports whether owner holds it.
func (c *deliveryClaims) take(userID, owner string, now, until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.claims[userID]; ok && cur.owner != owner && !cur.until.Before(now) {
		return false
	}
	if c.claims == nil {
		c.claims = map[string]deliveryClaim{}
	}
	c.claims[userID] = deliveryClaim{owner: owner, until: until}
	return true
}

// release ends owner's claim of userID, if owner holds it.
func (c *deliveryClaims) release(userID, owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.claims[userID]; ok && owner != "" && cur.owner == owner {
		delete(c.claims, userID)
	}
}

// raiseMark raises userID's delivered mark to seq, unless it is at seq or
// above already, in tx.
func raiseMark(tx *bbolt.Tx, userID string, seq int64) error {
	rec, err := readDelivery(tx, userID)
	if err != nil || rec.Delivered >= seq {
		return err
	}
	b, err := tx.CreateBucketIfNotExists(bucketDeliveries)
	if err != nil {
		return fmt.Errorf("bolt: mark delivered: %w: %w", errUnavailable, err)
	}
	v, err := json.Marshal(deliveryRecord{Format: recordFormat, Delivered: seq})
	if err != nil {
		return fmt.Errorf("bolt: encode delivered mark: %w", err)
	}
	if err := b.Put([]byte(userID), v); err != nil {
		return fmt.Errorf("bolt: mark delivered: %w: %w", errUnavailable, err)
	}
	return nil
}

// readDelivery returns userID's delivered mark record, or a zero one when
// there is none.
func readDelivery(tx *bbolt.Tx, userID string) (deliveryRecord, error) {
	var rec deliveryRecord
	b := tx.Bucket(bucketDeliveries)
	if b == nil {
		return rec, nil
	}
	v := b.Get([]byte(userID))
	if v == nil {
		return rec, nil
	}
	if err := json.Unmarshal(v, &rec); err != nil {
		return deliveryRecord{}, fmt.Errorf("bolt: decode delivered mark: %w", err)
	}
	if rec.Format != recordFormat {
		return deliveryRecord{}, fmt.Errorf("bolt: decode delivered mark: unknown record format %d", rec.Format)
	}
	return rec, nil
}
