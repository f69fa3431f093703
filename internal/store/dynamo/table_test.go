package dynamo_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestNew_WaitForTable checks how New waits for a table it creates to become
// ACTIVE, with a stand-in for DynamoDB in a synctest bubble, so that the
// timeout passes without real time.
func TestNew_WaitForTable(t *testing.T) {
	for _, tt := range []struct {
		name     string
		creating int   // DescribeTable answers CREATING this often (-1: ever)
		noIndex  bool  // the ACTIVE table lacks the index
		failWith error // DescribeTable fails so after CreateTable
		want     tokens.Code
		wantWait time.Duration // at least
	}{
		{name: "BecomesActive", creating: 3},
		{name: "ActiveAtOnce", creating: 0},
		{name: "NeverActive", creating: -1, want: tokens.EUNAVAILABLE, wantWait: dynamo.TableWaitTimeout - time.Second},
		{name: "NoIndex", creating: 1, noIndex: true, want: tokens.EINTERNAL},
		{name: "Refused", failWith: &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}, want: tokens.EINTERNAL},
		{name: "Throttled", failWith: &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}, want: tokens.EUNAVAILABLE},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &tableClient{failingClient: failingClient{errUnexpected}, creating: tt.creating, noIndex: tt.noIndex, failWith: tt.failWith}
				start := time.Now()
				_, err := dynamo.New(t.Context(), dynamo.Options{Table: "broker", Client: c, CreateTable: true})
				waited := time.Since(start)
				if got := tokens.ErrorCode(err); got != tt.want {
					t.Fatalf("New error = %v (code %q), want code %q", err, got, tt.want)
				}
				if waited > dynamo.TableWaitTimeout || waited < tt.wantWait {
					t.Errorf("New returned after %v, want between %v and %v", waited, tt.wantWait, dynamo.TableWaitTimeout)
				}
				if !c.wasCreated() {
					t.Errorf("New did not create the missing table")
				}
			})
		})
	}

	t.Run("CallerDeadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const deadline = 3 * time.Second
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			start := time.Now()
			_, err := dynamo.New(ctx, dynamo.Options{Table: "broker", Client: &tableClient{failingClient: failingClient{errUnexpected}, creating: -1}, CreateTable: true})
			if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
				t.Fatalf("New error = %v (code %q), want code %q", err, got, want)
			}
			if waited := time.Since(start); waited > deadline {
				t.Errorf("New returned after %v, want by its deadline %v", waited, deadline)
			}
		})
	})
}

// tableClient stands in for DynamoDB while New creates a table: DescribeTable
// answers ResourceNotFound until CreateTable is called, then fails with
// failWith if set, else shows the table CREATING creating times (forever when
// creating is negative) and then ACTIVE, with the index unless noIndex. Every
// other call fails.
type tableClient struct {
	failingClient
	creating int
	noIndex  bool
	failWith error

	mu      sync.Mutex
	created bool
}

func (c *tableClient) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	// An answer takes a moment, as DynamoDB's does; the SDK's waiter counts it
	// against its time left, and would call again at once if no time passed.
	// Like the SDK's own calls, it ends with ctx.
	select {
	case <-time.After(describeLatency):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.created:
		return nil, &types.ResourceNotFoundException{Message: aws.String("no table")}
	case c.failWith != nil:
		return nil, c.failWith
	}
	status := types.TableStatusActive
	if c.creating != 0 {
		status = types.TableStatusCreating
		if c.creating > 0 {
			c.creating--
		}
	}
	desc := &types.TableDescription{TableName: in.TableName, TableStatus: status}
	if !c.noIndex {
		desc.GlobalSecondaryIndexes = []types.GlobalSecondaryIndexDescription{{IndexName: aws.String(dynamo.IndexGSI1)}}
	}
	return &dynamodb.DescribeTableOutput{Table: desc}, nil
}

func (c *tableClient) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.created {
		return nil, &types.ResourceInUseException{Message: aws.String("table exists")}
	}
	c.created = true
	return &dynamodb.CreateTableOutput{}, nil
}

func (c *tableClient) wasCreated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// describeLatency is how long tableClient takes to answer DescribeTable.
const describeLatency = time.Millisecond

// errUnexpected is tableClient's answer to calls New does not make.
var errUnexpected = errors.New("tableClient: unexpected call")
