package dynamo

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// AcquireLease takes the refresh lease of userID's link in the view's skill
// for owner as tokens.Leaser specifies, in one conditional write that succeeds when no lease item exists,
// its until is before now, or owner holds it; a refused write is the answer
// false, not an error. Lease items carry a time to live one day after until.
//
// It returns an EINVALID error when tokens.ValidateLease refuses the arguments or
// userID is longer than MaxUserIDLen bytes or not UTF-8, and an EUNAVAILABLE
// error when DynamoDB cannot be reached.
func (s *Store) AcquireLease(ctx context.Context, userID, owner string, now, until time.Time) (bool, error) {
	if err := tokens.ValidateLease(userID, owner); err != nil {
		return false, err
	}
	if err := checkUserID(userID); err != nil {
		return false, err
	}
	item, err := marshal("acquire lease", leaseItem{
		PK: s.keys.user + userID, SK: skLease, Format: recordFormat,
		Owner: owner, Until: unixNanos(until), TTL: until.Add(leaseTTL).Unix(),
	})
	if err != nil {
		return false, err
	}
	return s.put(ctx, "acquire lease", item, expression.Or(
		expression.AttributeNotExists(expression.Name(AttrPK)),
		expression.Name(attrUntil).LessThan(expression.Value(unixNanos(now))),
		expression.Name(attrOwner).Equal(expression.Value(owner)),
	))
}

// ReleaseLease removes the refresh lease of userID if owner holds it, as
// tokens.Leaser specifies, in one conditional write. It returns an EUNAVAILABLE
// error when DynamoDB cannot be reached.
func (s *Store) ReleaseLease(ctx context.Context, userID, owner string) error {
	_, err := s.remove(ctx, "release lease", s.keys.user+userID, skLease,
		expression.Name(attrOwner).Equal(expression.Value(owner)))
	return err
}
