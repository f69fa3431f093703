package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/reports"
)

// ClaimDelivery takes lane's delivery claim for owner as
// reports.Store.ClaimDelivery says, in one conditional update of the lane's
// delivery item (sk DELIVERY; pk USER#<user id> for the lane of the default
// skill's profile reports, LANE#<lane> for the others) that succeeds when the
// item does not exist, has no owner (released), its until is before now, or
// owner holds it; a refused update is the answer false, not an error. The
// update keeps the item's delivered mark and returns it. The item carries a
// time to live deliveryTTL after until. Lanes are the table's, the same
// through every view.
//
// It returns an EINVALID error when reports.CheckDeliveryClaim refuses the
// arguments or the store cannot keep lane (see CreateReport), an
// EUNAVAILABLE error when DynamoDB cannot be reached, and an EINTERNAL error
// when the item is corrupt.
func (s *Store) ClaimDelivery(ctx context.Context, lane, owner string, now, until time.Time) (int64, bool, error) {
	if err := reports.CheckDeliveryClaim(lane, owner); err != nil {
		return 0, false, err
	}
	if err := checkLane(lane); err != nil {
		return 0, false, err
	}
	update := expression.Set(expression.Name(attrOwner), expression.Value(owner)).
		Set(expression.Name(attrUntil), expression.Value(unixNanos(until))).
		Set(expression.Name(attrFormat), expression.Value(recordFormat)).
		Set(expression.Name(AttrTTL), expression.Value(until.Add(deliveryTTL).Unix()))
	cond := expression.Or(
		expression.AttributeNotExists(expression.Name(AttrPK)),
		expression.AttributeNotExists(expression.Name(attrOwner)),
		expression.Name(attrUntil).LessThan(expression.Value(unixNanos(now))),
		expression.Name(attrOwner).Equal(expression.Value(owner)),
	)
	item, ok, err := s.updateIf(ctx, "claim delivery", deliveryPK(lane), skDelivery, update, cond, types.ReturnValueAllNew)
	if err != nil || !ok {
		return 0, false, err
	}
	var rec deliveryItem
	if err := unmarshal(item, &rec); err != nil {
		return 0, false, fmt.Errorf("dynamo: decode delivery claim: %w: %w", errCorrupt, err)
	}
	if rec.Format != recordFormat || rec.Owner != owner {
		return 0, false, fmt.Errorf("dynamo: decode delivery claim of %q: format %d: %w", lane, rec.Format, errCorrupt)
	}
	s.order.observe(rec.Delivered)
	return rec.Delivered, true, nil
}

// ReleaseDelivery ends owner's delivery claim of lane as
// reports.Store.ReleaseDelivery says: one conditional update removes the
// owner and until when owner holds the claim, and keeps the item for its
// delivered mark. It returns an EUNAVAILABLE error when DynamoDB cannot be
// reached.
func (s *Store) ReleaseDelivery(ctx context.Context, lane, owner string) error {
	if lane == "" || owner == "" || checkLane(lane) != nil {
		return nil // nobody can hold such a claim
	}
	update := expression.Remove(expression.Name(attrOwner)).Remove(expression.Name(attrUntil))
	_, _, err := s.updateIf(ctx, "release delivery", deliveryPK(lane), skDelivery, update,
		expression.Name(attrOwner).Equal(expression.Value(owner)), types.ReturnValueNone)
	return err
}

// markDelivered raises lane's delivered mark to seq in one update on the
// condition that the mark is absent or lower; a mark at seq or above is left
// as it is. An item it creates carries a time to live deliveryTTL from now.
// It returns an EUNAVAILABLE error when DynamoDB cannot be reached.
func (s *Store) markDelivered(ctx context.Context, lane string, seq int64) error {
	update := expression.Set(expression.Name(attrDelivered), expression.Value(seq)).
		Set(expression.Name(attrFormat), expression.Value(recordFormat)).
		Set(expression.Name(AttrTTL), expression.IfNotExists(expression.Name(AttrTTL), expression.Value(s.now().Add(deliveryTTL).Unix())))
	cond := expression.Or(
		expression.AttributeNotExists(expression.Name(attrDelivered)),
		expression.Name(attrDelivered).LessThan(expression.Value(seq)),
	)
	_, _, err := s.updateIf(ctx, "mark delivered", deliveryPK(lane), skDelivery, update, cond, types.ReturnValueNone)
	return err
}
