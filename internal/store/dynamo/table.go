package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableWaitTimeout bounds how long New waits for a table it creates to become
// ACTIVE, unless ctx ends sooner.
const TableWaitTimeout = 2 * time.Minute

// CreateTableInput returns the request that creates the store's table under
// name, on demand (PAY_PER_REQUEST): its key schema, attribute definitions and
// index are the table design of the package documentation. The time-to-live
// setting on AttrTTL is not part of it: DynamoDB sets it with a separate call.
func CreateTableInput(name string) *dynamodb.CreateTableInput {
	str := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	keys := func(hash, rng string) []types.KeySchemaElement {
		return []types.KeySchemaElement{
			{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{str(AttrPK), str(AttrSK), str(AttrGSI1PK), str(AttrGSI1SK)},
		KeySchema:            keys(AttrPK, AttrSK),
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String(IndexGSI1),
			KeySchema:  keys(AttrGSI1PK, AttrGSI1SK),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
}

// ensureTable creates the table unless it exists, and waits until it is ACTIVE.
// Several processes may race to create it: all of them wait for the one table.
func (s *Store) ensureTable(ctx context.Context) error {
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: s.table})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = s.client.CreateTable(ctx, CreateTableInput(*s.table))
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return s.fail("create table "+*s.table, err)
		}
		// No broker of an earlier version has served the table (one that
		// created it at once beside this process would be of this one).
		s.order.toClock = true
	case err != nil:
		return s.fail("describe table "+*s.table, err)
	case out.Table != nil && out.Table.TableStatus == types.TableStatusActive:
		return checkTable(out.Table)
	}
	return s.waitActive(ctx)
}

// tableCheckTimeout bounds New's one look at a table it does not create: a
// DynamoDB that has not answered by then is let through.
const tableCheckTimeout = 3 * time.Second

// checkExists describes the table once, for New without CreateTable: a
// missing table is ErrNoTable, a refused request (credentials, permissions)
// an EINTERNAL error, and a table without IndexGSI1 too. A DynamoDB that does
// not answer within tableCheckTimeout, or fails, is let through: the calls and
// Ping say so until it answers.
func (s *Store) checkExists(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, tableCheckTimeout)
	defer cancel()
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: s.table}, func(o *dynamodb.Options) {
		o.RetryMaxAttempts = 1
	})
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		return fmt.Errorf("dynamo: table %s: %w", *s.table, ErrNoTable)
	case err != nil && rejected(err):
		return s.fail("describe table "+*s.table, err)
	case err != nil:
		return nil
	case out.Table != nil && out.Table.TableStatus == types.TableStatusActive:
		return checkTable(out.Table)
	}
	return nil
}

// Delays between two looks of waitActive at a table being created: the SDK's
// waiter starts at the first and backs off, with jitter, up to the second. A
// local server creates a table in milliseconds, DynamoDB in seconds.
const (
	tableWaitMinDelay = 5 * time.Millisecond
	tableWaitMaxDelay = 50 * time.Millisecond
)

// waitActive waits with the SDK's TableExistsWaiter until the table is ACTIVE,
// at most TableWaitTimeout. A table that does not show yet is waited for, as
// one just created may not. It returns an EUNAVAILABLE error when the table is
// not ACTIVE in time or ctx ends, and the classified error of DescribeTable when
// DynamoDB answers anything else.
func (s *Store) waitActive(ctx context.Context) error {
	var failed error // DescribeTable's error that ended the wait, if one did
	w := dynamodb.NewTableExistsWaiter(s.client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = tableWaitMinDelay, tableWaitMaxDelay
		retryable := o.Retryable
		o.Retryable = func(ctx context.Context, in *dynamodb.DescribeTableInput, out *dynamodb.DescribeTableOutput, err error) (bool, error) {
			retry, err := retryable(ctx, in, out, err)
			failed = err
			return retry, err
		}
	})
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: s.table}, TableWaitTimeout)
	switch {
	case err == nil:
		return checkTable(out.Table)
	case failed != nil:
		return s.fail("wait for table "+*s.table, failed)
	}
	return fmt.Errorf("dynamo: table %s did not become ACTIVE within %s: %w: %w", *s.table, TableWaitTimeout, errUnavailable, err)
}

// checkTable returns an EINTERNAL error when the table lacks the index that
// the store queries.
func checkTable(t *types.TableDescription) error {
	for _, gsi := range t.GlobalSecondaryIndexes {
		if aws.ToString(gsi.IndexName) == IndexGSI1 {
			return nil
		}
	}
	return fmt.Errorf("dynamo: table %s has no index %s: %w", aws.ToString(t.TableName), IndexGSI1, errRejected)
}
