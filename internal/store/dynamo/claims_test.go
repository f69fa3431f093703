package dynamo_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
)

// TestStore_ClaimsExpireByTTL: DynamoDB removes expired code claims by itself,
// through the table's time to live on AttrTTL, so the store needs no
// tokens.ClaimSweeper; every claim, made or taken over, carries the attribute,
// one day after the claim's expiry.
func TestStore_ClaimsExpireByTTL(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	s := mustNew(t, endpoint, table, true)
	expired := time.Now().Add(-time.Minute).Truncate(time.Second)
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	for _, c := range []struct {
		name, user string
		expires    time.Time
	}{
		{"Made", "alice", expired},
		{"TakenOver", "bob", later},
	} {
		t.Run(c.name, func(t *testing.T) {
			if owner, err := s.ClaimCode(t.Context(), "code-1", c.user, c.expires); err != nil || owner != c.user {
				t.Fatalf("ClaimCode(code-1, %s) = %q, %v", c.user, owner, err)
			}
			out, err := dynamotest.Client(endpoint).GetItem(t.Context(), &dynamodb.GetItemInput{
				TableName:      aws.String(table),
				Key:            map[string]types.AttributeValue{dynamo.AttrPK: &types.AttributeValueMemberS{Value: "CODE#code-1"}, dynamo.AttrSK: &types.AttributeValueMemberS{Value: "CODE"}},
				ConsistentRead: aws.Bool(true),
			})
			if err != nil || out.Item == nil {
				t.Fatalf("GetItem of the claim = %v, %v", out, err)
			}
			ttl, ok := out.Item[dynamo.AttrTTL].(*types.AttributeValueMemberN)
			if !ok {
				t.Fatalf("claim item has no numeric %q attribute: %v", dynamo.AttrTTL, out.Item)
			}
			if got, want := ttl.Value, strconv.FormatInt(c.expires.Add(24*time.Hour).Unix(), 10); got != want {
				t.Errorf("claim's %s = %s, want %s (expiry + 1 day, epoch seconds)", dynamo.AttrTTL, got, want)
			}
		})
	}
}
