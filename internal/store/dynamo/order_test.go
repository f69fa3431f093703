package dynamo_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// earlierCounter takes the next value of the report counter of table as
// brokers of versions before clock order do, for every report they accept.
func earlierCounter(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(table),
		Key:                       map[string]types.AttributeValue{dynamo.AttrPK: attrS("COUNTER"), dynamo.AttrSK: attrS("REPORTS")},
		UpdateExpression:          aws.String("ADD #n :one"),
		ExpressionAttributeNames:  map[string]string{"#n": "n"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": attrN("1")},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	return err
}

// TestStore_ReportOrder checks where a new report's Seq comes from, and what
// accepting it costs: in clock order, the report's conditional PutItem alone;
// in counter order, the counter's UpdateItem first. Each store reads the
// table's order before its first report. A table no report was created in
// starts in clock order; one whose counter brokers of earlier versions used
// keeps counter order until a store with ClockOrder switches it, and every
// store of this version follows the switch. A broker of an earlier version is
// refused the counter then, rather than handed a number below the clock's.
func TestStore_ReportOrder(t *testing.T) {
	endpoint := dynamotest.Start(t)
	raw := dynamotest.Client(endpoint)
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	open := func(t *testing.T, table string, clockOrder bool) (*dynamo.Store, *recordingClient) {
		t.Helper()
		rec := &recordingClient{Client: raw}
		s, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: rec, CreateTable: true, ClockOrder: clockOrder})
		if err != nil {
			t.Fatal(err)
		}
		return s, rec
	}
	ctx := context.WithValue(t.Context(), traced{}, true)
	var seqs []int64 // of the lane u1's profile reports, in the order created
	create := func(t *testing.T, s *dynamo.Store, rec *recordingClient, id string, want ...string) *reports.Report {
		t.Helper()
		r := storetest.NewReport(id, "u1", at)
		if _, created, err := s.CreateReport(ctx, r); err != nil || !created {
			t.Fatalf("CreateReport(%s) = created %v, %v", id, created, err)
		}
		if got := rec.take(); !slices.Equal(got, want) {
			t.Errorf("CreateReport(%s) made the requests %q, want %q", id, got, want)
		}
		seqs = append(seqs, r.Seq)
		return r
	}
	clockSeq := func(t *testing.T, r *reports.Report, before time.Time) {
		t.Helper()
		if r.Seq < before.UnixMicro() || r.Seq > time.Now().UnixMicro()+1000 || r.Version != r.Seq {
			t.Errorf("report %s: Seq %d, Version %d; want the clock's microseconds, from %d, twice", r.MessageID, r.Seq, r.Version, before.UnixMicro())
		}
	}
	counterSeq := func(t *testing.T, r *reports.Report, seq int64) {
		t.Helper()
		if r.Seq != seq || r.Version != seq<<24 {
			t.Errorf("report %s: Seq %d, Version %d; want the counter's %d, and it shifted by 24", r.MessageID, r.Seq, r.Version, seq)
		}
	}
	counter := func(t *testing.T, table, want string) {
		t.Helper()
		item := getRaw(t, endpoint, table, "COUNTER", "REPORTS")
		var got string
		switch n := item["n"].(type) {
		case *types.AttributeValueMemberS:
			got = "S " + n.Value
		case *types.AttributeValueMemberN:
			got = "N " + n.Value
		}
		if got != want {
			t.Errorf("the report counter holds %q, want %q", got, want)
		}
	}
	earlierRefused := func(t *testing.T, table string) {
		t.Helper()
		err := earlierCounter(t.Context(), raw, table)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
			t.Errorf("an earlier version's counter update = %v, want a ValidationException", err)
		}
	}
	const (
		readOrder   = "GetItem REPORTS"
		writeOrder  = "UpdateItem REPORTS" // the switch, or the counter's next value
		writeReport = "PutItem REPORT"
	)

	t.Run("NewTable", func(t *testing.T) {
		seqs = nil
		table := dynamotest.NewTable(t, endpoint)
		s, rec := open(t, table, false)
		before := time.Now()
		clockSeq(t, create(t, s, rec, "m1", readOrder, writeOrder, writeReport), before)
		clockSeq(t, create(t, s.ForSkill("home"), rec, "m2", writeReport), before)
		other, orec := open(t, table, false)
		clockSeq(t, create(t, other, orec, "m3", readOrder, writeReport), before)
		counter(t, table, "S clock")
		earlierRefused(t, table)
		if !slices.IsSorted(seqs) {
			t.Errorf("Seqs %v, want them rising", seqs)
		}
	})

	t.Run("CounterTable", func(t *testing.T) {
		seqs = nil
		table := dynamotest.NewTable(t, endpoint)
		s, rec := open(t, table, false) // creates the table
		for range 41 {
			if err := earlierCounter(t.Context(), raw, table); err != nil {
				t.Fatal(err)
			}
		}
		counterSeq(t, create(t, s, rec, "m1", readOrder, writeOrder, writeReport), 42)
		counterSeq(t, create(t, s, rec, "m2", writeOrder, writeReport), 43)
		if err := earlierCounter(t.Context(), raw, table); err != nil { // an earlier broker, beside this one
			t.Fatal(err)
		}
		counter(t, table, "N 44")

		// One instance switches; the other finds the switch at its next
		// counter update, and follows.
		switcher, srec := open(t, table, true)
		before := time.Now()
		clockSeq(t, create(t, switcher, srec, "m3", readOrder, writeOrder, writeReport), before)
		clockSeq(t, create(t, switcher, srec, "m4", writeReport), before)
		counter(t, table, "S clock")
		clockSeq(t, create(t, s, rec, "m5", writeOrder, readOrder, writeReport), before)
		clockSeq(t, create(t, s, rec, "m6", writeReport), before)
		earlierRefused(t, table)
		if !slices.IsSorted(seqs) {
			t.Errorf("Seqs %v, want them rising", seqs)
		}

		// A store that asks to switch a table in clock order changes nothing.
		again, arec := open(t, table, true)
		clockSeq(t, create(t, again, arec, "m7", readOrder, writeReport), before)
		counter(t, table, "S clock")
	})
}

// TestStore_ReportOrder_Corrupt checks that a report counter holding neither
// order is an internal error, not a guess.
func TestStore_ReportOrder_Corrupt(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	s, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Endpoint: endpoint, AWS: dynamotest.Config(), CreateTable: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dynamotest.Client(endpoint).PutItem(t.Context(), &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item:      map[string]types.AttributeValue{dynamo.AttrPK: attrS("COUNTER"), dynamo.AttrSK: attrS("REPORTS"), "n": attrS("sundial")},
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.CreateReport(t.Context(), storetest.NewReport("m1", "u1", time.Now()))
	if got := tokens.ErrorCode(err); got != tokens.EINTERNAL {
		t.Errorf("CreateReport on a corrupt counter = %v (%s), want an EINTERNAL error", err, got)
	}
}
