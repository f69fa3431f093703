package dynamo_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
)

// traced marks the context of the calls whose requests a recordingClient
// records.
type traced struct{}

// recordingClient is a DynamoDB client that records the writes and reads by
// key made with a context marked traced: the requests on a call's own path,
// not those of the store's background work.
type recordingClient struct {
	*dynamodb.Client
	mu       sync.Mutex
	requests []string // operation and the item's sort key, such as "PutItem REPORT"
}

func (c *recordingClient) record(ctx context.Context, op string, key map[string]types.AttributeValue) {
	if ctx.Value(traced{}) == nil {
		return
	}
	sk, _ := key[dynamo.AttrSK].(*types.AttributeValueMemberS)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, op+" "+sk.Value)
}

// take returns the requests recorded, and forgets them.
func (c *recordingClient) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.requests
	c.requests = nil
	return r
}

func (c *recordingClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.record(ctx, "GetItem", in.Key)
	return c.Client.GetItem(ctx, in, opts...)
}

func (c *recordingClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.record(ctx, "PutItem", in.Item)
	return c.Client.PutItem(ctx, in, opts...)
}

func (c *recordingClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.record(ctx, "UpdateItem", in.Key)
	return c.Client.UpdateItem(ctx, in, opts...)
}

func (c *recordingClient) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.record(ctx, "DeleteItem", in.Key)
	return c.Client.DeleteItem(ctx, in, opts...)
}

// TestStore_CreateReportRequests checks what accepting a delivery costs on a
// new table, in clock order (TestStore_ReportOrder has counter order):
// CreateReport of a new report writes it on the condition that its message
// id is free, one request, once the store has read the table's order with
// its first report; its count is added to the STATS item after it has
// returned, and CountReports sees it. A message id taken costs the failed
// write and one read.
func TestStore_CreateReportRequests(t *testing.T) {
	endpoint := dynamotest.Start(t)
	rec := &recordingClient{Client: dynamotest.Client(endpoint)}
	s, err := dynamo.New(t.Context(), dynamo.Options{Table: dynamotest.NewTable(t, endpoint), Client: rec, CreateTable: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.WithValue(t.Context(), traced{}, true)
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	if _, _, err := s.CreateReport(t.Context(), storetest.NewReport("m0", "u0", at)); err != nil {
		t.Fatal(err) // reads the table's order, untraced
	}
	for _, r := range []*reports.Report{storetest.NewReport("m1", "u1", at), storetest.NewAlexaEvent("m2", "home", "u1", at)} {
		if _, created, err := s.CreateReport(ctx, r); err != nil || !created {
			t.Fatalf("CreateReport(%s) = created %v, %v", r.MessageID, created, err)
		}
		if got, want := rec.take(), []string{"PutItem REPORT"}; !slices.Equal(got, want) {
			t.Errorf("CreateReport(%s) made the requests %q, want %q", r.MessageID, got, want)
		}
	}
	if _, created, err := s.CreateReport(ctx, storetest.NewReport("m1", "u2", at)); err != nil || created {
		t.Fatalf("CreateReport(m1 again) = created %v, %v", created, err)
	}
	if got, want := rec.take(), []string{"PutItem REPORT", "GetItem REPORT"}; !slices.Equal(got, want) {
		t.Errorf("CreateReport(m1 again) made the requests %q, want %q", got, want)
	}
	counts, err := s.CountReports(t.Context())
	if err != nil || counts[reports.StatePending] != 3 {
		t.Errorf("CountReports = %v, %v; want 3 PENDING", counts, err)
	}
}
