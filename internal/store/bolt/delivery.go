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

// bucketDeliveries holds each lane's delivered mark, keyed by lane (see
// reports.Lane; a user's profile reports in the default skill have the user
// id for lane, so the marks written before lanes existed are theirs). Files
// made before it existed lack it: PutReport creates it, and reads take its
// absence for no mark.
var bucketDeliveries = []byte("deliveries")

// deliveryRecord is how a lane's delivered mark is kept.
type deliveryRecord struct {
	Format    int   `json:"format"`
	Delivered int64 `json:"delivered"`
}

// deliveryClaims are the lanes' delivery claims (and, for the webhooks, the
// users'). They are kept in memory:
// bbolt's file lock keeps every other process out, so the claims of this
// process are all the claims there are, and a claim need not outlive it (one
// that ends with its process has run out). It saves the deliverer two disk
// writes per attempt. The zero value is ready for use.
type deliveryClaims struct {
	mu     sync.Mutex
	claims map[string]deliveryClaim // lane or user id → claim
}

// deliveryClaim is one lane's (or user's) delivery claim.
type deliveryClaim struct {
	owner string
	until time.Time
}

// ClaimDelivery takes lane's delivery claim for owner as
// reports.Store.ClaimDelivery says: the claim in memory (see deliveryClaims),
// shared by every view, the delivered mark read from the file.
//
// It returns an EINVALID error when reports.CheckDeliveryClaim refuses the
// arguments or lane is longer than a bbolt key, an EUNAVAILABLE error when
// the database cannot be read, and an EINTERNAL error when the stored mark is
// corrupt.
func (s *Store) ClaimDelivery(ctx context.Context, lane, owner string, now, until time.Time) (int64, bool, error) {
	if err := reports.CheckDeliveryClaim(lane, owner); err != nil {
		return 0, false, err
	}
	if len(lane) > bbolt.MaxKeySize {
		return 0, false, tokens.Errorf(tokens.EINVALID, "lane longer than %d bytes", bbolt.MaxKeySize)
	}
	var mark int64
	var held bool
	err := s.view(ctx, "claim delivery", func(tx *bbolt.Tx) error {
		rec, err := readDelivery(tx, lane)
		if err != nil {
			return err
		}
		if !s.deliveries.take(lane, owner, now, until) {
			return nil // another owner's claim stands
		}
		mark, held = rec.Delivered, true
		return nil
	})
	return mark, held, err
}

// ReleaseDelivery ends owner's delivery claim of lane as
// reports.Store.ReleaseDelivery says, in memory. It always returns nil.
func (s *Store) ReleaseDelivery(_ context.Context, lane, owner string) error {
	s.deliveries.release(lane, owner)
	return nil
}

// take gives key's claim to owner until until, unless another owner's claim
// stands at now, and reports whether owner holds it.
func (c *deliveryClaims) take(key, owner string, now, until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.claims[key]; ok && cur.owner != owner && !cur.until.Before(now) {
		return false
	}
	if c.claims == nil {
		c.claims = map[string]deliveryClaim{}
	}
	c.claims[key] = deliveryClaim{owner: owner, until: until}
	return true
}

// release ends owner's claim of key, if owner holds it.
func (c *deliveryClaims) release(key, owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.claims[key]; ok && owner != "" && cur.owner == owner {
		delete(c.claims, key)
	}
}

// raiseMark raises lane's delivered mark to seq, unless it is at seq or above
// already, in tx.
func raiseMark(tx *bbolt.Tx, lane string, seq int64) error {
	rec, err := readDelivery(tx, lane)
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
	if err := b.Put([]byte(lane), v); err != nil {
		return fmt.Errorf("bolt: mark delivered: %w: %w", errUnavailable, err)
	}
	return nil
}

// readDelivery returns lane's delivered mark record, or a zero one when there
// is none.
func readDelivery(tx *bbolt.Tx, lane string) (deliveryRecord, error) {
	var rec deliveryRecord
	b := tx.Bucket(bucketDeliveries)
	if b == nil {
		return rec, nil
	}
	v := b.Get([]byte(lane))
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
