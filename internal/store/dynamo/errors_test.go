package dynamo_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestStore_Errors checks how the client's errors become error codes, with a
// stand-in for DynamoDB that fails every call.
func TestStore_Errors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want tokens.Code
	}{
		{"Throttled", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}, tokens.EUNAVAILABLE},
		{"RequestLimit", &types.RequestLimitExceeded{Message: aws.String("slow down")}, tokens.EUNAVAILABLE},
		{"ServerError", &types.InternalServerError{Message: aws.String("oops")}, tokens.EUNAVAILABLE},
		{"UnmodeledServerError", &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}, tokens.EUNAVAILABLE},
		{"MissingTable", &types.ResourceNotFoundException{Message: aws.String("no table")}, tokens.EUNAVAILABLE},
		{"Network", &smithyhttp.RequestSendError{Err: errors.New("connection refused")}, tokens.EUNAVAILABLE},
		{"Canceled", fmt.Errorf("operation error: %w", context.Canceled), tokens.EUNAVAILABLE},
		{"DeadlineExceeded", fmt.Errorf("operation error: %w", context.DeadlineExceeded), tokens.EUNAVAILABLE},
		{"Validation", &smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}, tokens.EINTERNAL},
		{"AccessDenied", &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}, tokens.EINTERNAL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := dynamo.New(t.Context(), dynamo.Options{Table: "broker", Client: &failsAfterNew{failingClient: failingClient{tt.err}}})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			for _, c := range []struct {
				name string
				call func() error
				want tokens.Code
			}{
				{"Ping", func() error { return s.Ping(t.Context()) }, tokens.EUNAVAILABLE},
				{"GetLink", func() error { _, err := s.GetLink(t.Context(), "u"); return err }, tt.want},
				{"PutLink", func() error { return s.PutLink(t.Context(), storetest.NewLink("u")) }, tt.want},
				{"DeleteLink", func() error { return s.DeleteLink(t.Context(), "u") }, tt.want},
				{"ListLinks", func() error { _, err := s.ListLinks(t.Context(), "", 0); return err }, tt.want},
				{"ClaimCode", func() error { _, err := s.ClaimCode(t.Context(), "c", "u", now); return err }, tt.want},
				{"AcquireLease", func() error { _, err := s.AcquireLease(t.Context(), "u", "o", now, now); return err }, tt.want},
				{"ReleaseLease", func() error { return s.ReleaseLease(t.Context(), "u", "o") }, tt.want},
				{"CreateReport", func() error { _, _, err := s.CreateReport(t.Context(), storetest.NewReport("m", "u", now)); return err }, tt.want},
				{"DueReports", func() error { _, err := s.DueReports(t.Context(), now, 10); return err }, tt.want},
				{"ClaimDelivery", func() error { _, _, err := s.ClaimDelivery(t.Context(), "u", "o", now, now); return err }, tt.want},
				{"ReleaseDelivery", func() error { return s.ReleaseDelivery(t.Context(), "u", "o") }, tt.want},
				{"DeleteFinishedReports", func() error { _, err := s.DeleteFinishedReports(t.Context(), now); return err }, tt.want},
				{"Skills", func() error { _, err := s.Skills(t.Context()); return err }, tt.want},
				{"ForSkill/GetLink", func() error { _, err := s.ForSkill("home").GetLink(t.Context(), "u"); return err }, tt.want},
				{"ForSkill/PutLink", func() error { return s.ForSkill("home").PutLink(t.Context(), storetest.NewLink("u")) }, tt.want},
			} {
				err := c.call()
				if got := tokens.ErrorCode(err); got != c.want {
					t.Errorf("%s: error = %v (code %q), want code %q", c.name, err, got, c.want)
				}
				if !errors.Is(err, tt.err) && !errors.As(err, new(smithy.APIError)) && !errors.As(err, new(*smithyhttp.RequestSendError)) {
					t.Errorf("%s: error = %v, want it to wrap the client's error", c.name, err)
				}
			}
		})
	}

	t.Run("CreateTableRefused", func(t *testing.T) {
		c := failingClient{&smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}}
		_, err := dynamo.New(t.Context(), dynamo.Options{Table: "broker", Client: c, CreateTable: true})
		if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
			t.Errorf("New error = %v (code %q), want code %q", err, got, want)
		}
	})
}

// TestNew_Table checks New's look at the table when it is not asked to create
// it: a missing table stops it (ErrNoTable), as do a refused request and a
// table without the index; a DynamoDB that does not answer now does not.
func TestNew_Table(t *testing.T) {
	for _, tt := range []struct {
		name        string
		describe    error // DescribeTable's answer; nil shows the table
		noIndex     bool
		want        tokens.Code
		wantNoTable bool
	}{
		{name: "Exists"},
		{name: "Missing", describe: &types.ResourceNotFoundException{Message: aws.String("no table")}, want: tokens.EINVALID, wantNoTable: true},
		{name: "Refused", describe: &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}, want: tokens.EINTERNAL},
		{name: "NoIndex", noIndex: true, want: tokens.EINTERNAL},
		{name: "Unreachable", describe: &smithyhttp.RequestSendError{Err: errors.New("connection refused")}},
		{name: "Throttled", describe: &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &failsAfterNew{failingClient: failingClient{cmp.Or(tt.describe, errors.New("unexpected call"))}, noIndex: tt.noIndex, shown: tt.describe != nil}
			_, err := dynamo.New(t.Context(), dynamo.Options{Table: "broker", Client: c})
			if got := tokens.ErrorCode(err); got != tt.want {
				t.Errorf("New error = %v (code %q), want code %q", err, got, tt.want)
			}
			if got := errors.Is(err, dynamo.ErrNoTable); got != tt.wantNoTable {
				t.Errorf("New error = %v; errors.Is(err, ErrNoTable) = %v, want %v", err, got, tt.wantNoTable)
			}
			if tt.wantNoTable && !strings.Contains(err.Error(), "table broker") {
				t.Errorf("New error = %v, does not name the table", err)
			}
		})
	}
}

// failsAfterNew stands in for DynamoDB: its first DescribeTable shows the
// table ACTIVE (with the index unless noIndex), unless shown is already set;
// every other call fails as failingClient does.
type failsAfterNew struct {
	failingClient
	noIndex bool
	shown   bool
}

func (c *failsAfterNew) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if c.shown {
		return c.failingClient.DescribeTable(ctx, in, opts...)
	}
	c.shown = true
	desc := &types.TableDescription{TableName: in.TableName, TableStatus: types.TableStatusActive}
	if !c.noIndex {
		desc.GlobalSecondaryIndexes = []types.GlobalSecondaryIndexDescription{{IndexName: aws.String(dynamo.IndexGSI1)}}
	}
	return &dynamodb.DescribeTableOutput{Table: desc}, nil
}

// failingClient stands in for DynamoDB, and fails every call with err.
type failingClient struct{ err error }

func (c failingClient) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, c.err
}

func (c failingClient) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, c.err
}

func (c failingClient) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, c.err
}

func (c failingClient) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return nil, c.err
}

func (c failingClient) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, c.err
}

func (c failingClient) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return nil, c.err
}

func (c failingClient) CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return nil, c.err
}
