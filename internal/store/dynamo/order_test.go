package dynamo_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	// open returns a store of table, which it creates when create is set.
	open := func(t *testing.T, table string, create, clockOrder bool) (*dynamo.Store, *recordingClient) {
		t.Helper()
		rec := &recordingClient{Client: raw}
		s, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: rec, CreateTable: create, ClockOrder: clockOrder})
		if err != nil {
			t.Fatal(err)
		}
		return s, rec
	}
	// existing returns a table that a broker made (as the CloudFormation
	// template does, or a broker of an earlier version), with no report.
	existing := func(t *testing.T) string {
		table := dynamotest.NewTable(t, endpoint)
		open(t, table, true, false)
		return table
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
		s, rec := open(t, table, true, false)
		before := time.Now()
		clockSeq(t, create(t, s, rec, "m1", readOrder, writeOrder, writeReport), before)
		clockSeq(t, create(t, s.ForSkill("home"), rec, "m2", writeReport), before)
		other, orec := open(t, table, false, false)
		clockSeq(t, create(t, other, orec, "m3", readOrder, writeReport), before)
		counter(t, table, "S clock")
		earlierRefused(t, table)
		if !slices.IsSorted(seqs) {
			t.Errorf("Seqs %v, want them rising", seqs)
		}
	})

	t.Run("ExistingTable", func(t *testing.T) {
		seqs = nil
		table := existing(t)
		s, rec := open(t, table, false, false)
		counterSeq(t, create(t, s, rec, "m1", readOrder, writeOrder, writeReport), 1)
		if err := earlierCounter(t.Context(), raw, table); err != nil {
			t.Errorf("an earlier version's counter update = %v, want it to go on", err)
		}
		counterSeq(t, create(t, s, rec, "m2", writeOrder, writeReport), 3)
	})

	t.Run("ExistingTableSwitched", func(t *testing.T) {
		seqs = nil
		table := existing(t)
		s, rec := open(t, table, false, true)
		before := time.Now()
		clockSeq(t, create(t, s, rec, "m1", readOrder, writeOrder, writeReport), before)
		counter(t, table, "S clock")
		earlierRefused(t, table)
	})

	t.Run("CounterTable", func(t *testing.T) {
		seqs = nil
		table := existing(t)
		for range 41 { // reports that brokers of an earlier version accepted
			if err := earlierCounter(t.Context(), raw, table); err != nil {
				t.Fatal(err)
			}
		}
		s, rec := open(t, table, false, false)
		counterSeq(t, create(t, s, rec, "m1", readOrder, writeOrder, writeReport), 42)
		counterSeq(t, create(t, s, rec, "m2", writeOrder, writeReport), 43)
		if err := earlierCounter(t.Context(), raw, table); err != nil { // an earlier broker, beside this one
			t.Fatal(err)
		}
		counter(t, table, "N 44")

		// One instance switches; the other finds the switch at its next
		// counter update, and follows.
		switcher, srec := open(t, table, false, true)
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
		again, arec := open(t, table, false, true)
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

// refusingClient refuses every ADD to the report counter, as DynamoDB
// refuses a request it finds malformed, while refuse is set.
type refusingClient struct {
	*dynamodb.Client
	refuse bool
}

func (c *refusingClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if sk, _ := in.Key[dynamo.AttrSK].(*types.AttributeValueMemberS); c.refuse && sk != nil && sk.Value == "REPORTS" && strings.HasPrefix(aws.ToString(in.UpdateExpression), "ADD") {
		return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "refused by the test", Fault: smithy.FaultClient}
	}
	return c.Client.UpdateItem(ctx, in, opts...)
}

// TestStore_ReportOrder_RefusedCounter: a counter update refused while the
// counter is still a Number is an internal error, and the store stays in
// counter order, rather than take the refusal for a switch.
func TestStore_ReportOrder_RefusedCounter(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	client := &refusingClient{Client: dynamotest.Client(endpoint)}
	if _, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: client, CreateTable: true}); err != nil {
		t.Fatal(err)
	}
	if err := earlierCounter(t.Context(), client.Client, table); err != nil {
		t.Fatal(err)
	}
	s, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	client.refuse = true
	if _, _, err := s.CreateReport(t.Context(), storetest.NewReport("m1", "u1", at)); tokens.ErrorCode(err) != tokens.EINTERNAL {
		t.Errorf("CreateReport with the counter refused = %v, want an EINTERNAL error", err)
	}
	client.refuse = false
	r := storetest.NewReport("m2", "u1", at)
	if _, _, err := s.CreateReport(t.Context(), r); err != nil || r.Seq != 2 {
		t.Errorf("CreateReport after the refusal = Seq %d, %v; want the counter's 2", r.Seq, err)
	}
}

// TestStore_ReportOrder_Observed: in clock order, a store whose clock lags
// another's still numbers its reports after those it has read (GetReport) and
// after its lanes' delivered marks (ClaimDelivery).
func TestStore_ReportOrder_Observed(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	logs := map[*dynamo.Store]*strings.Builder{}
	open := func(lag time.Duration) *dynamo.Store {
		var log strings.Builder
		s, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: dynamotest.Client(endpoint), CreateTable: true,
			Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		dynamo.SetSeqClock(s, func() time.Time { return time.Now().Add(-lag) })
		logs[s] = &log
		return s
	}
	ahead, reader, claimer := open(0), open(time.Hour), open(time.Hour)
	at := time.Now()
	r1 := storetest.NewReport("r1", "u1", at)
	if _, _, err := ahead.CreateReport(t.Context(), r1); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.GetReport(t.Context(), "r1"); err != nil {
		t.Fatal(err)
	}
	r2 := storetest.NewReport("r2", "u2", at)
	if _, _, err := reader.CreateReport(t.Context(), r2); err != nil || r2.Seq <= r1.Seq {
		t.Errorf("a report created after reading one of Seq %d has Seq %d (%v), want more", r1.Seq, r2.Seq, err)
	}

	r1.State, r1.FinishedAt, r1.DeliveredAt = reports.StateDelivered, at, at
	if err := ahead.PutReport(t.Context(), r1); err != nil {
		t.Fatal(err)
	}
	if mark, held, err := claimer.ClaimDelivery(t.Context(), r1.Lane(), "claimer", at, at.Add(time.Minute)); err != nil || !held || mark != r1.Seq {
		t.Fatalf("ClaimDelivery = mark %d, held %v, %v; want %d, true", mark, held, err, r1.Seq)
	}
	r3 := storetest.NewReport("r3", "u3", at)
	if _, _, err := claimer.CreateReport(t.Context(), r3); err != nil || r3.Seq <= r1.Seq {
		t.Errorf("a report created after a claim with the mark %d has Seq %d (%v), want more", r1.Seq, r3.Seq, err)
	}

	// The lagging processes warned once, however often they read; the one
	// ahead had nothing to warn of.
	if _, err := reader.GetReport(t.Context(), "r1"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		store *dynamo.Store
		warns int
	}{{"ahead", ahead, 0}, {"reader", reader, 1}, {"claimer", claimer, 1}} {
		got := logs[tt.store].String()
		if n := strings.Count(got, "level=WARN msg=\"report order: a Seq read from the table is ahead of this process's clock"); n != tt.warns || (n > 0 && !strings.Contains(got, "lead=59m")) {
			t.Errorf("%s logged %q, want %d warnings of a lead of about an hour", tt.name, got, tt.warns)
		}
	}
}

// TestStore_PendingReports_SameSeq: reports of one lane that two processes in
// clock order gave one Seq are each listed once, whatever the page size.
func TestStore_PendingReports_SameSeq(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	t0 := time.Now()
	var ids []string
	for _, name := range []string{"a", "b"} {
		s, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: dynamotest.Client(endpoint), CreateTable: true})
		if err != nil {
			t.Fatal(err)
		}
		dynamo.SetSeqClock(s, func() time.Time { return t0 })
		for i := range 3 {
			id := fmt.Sprintf("%s%d", name, i)
			if _, _, err := s.CreateReport(t.Context(), storetest.NewReport(id, "u1", t0)); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	s, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: dynamotest.Client(endpoint)})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	// A cursor of an earlier version holds the gsi1sk alone, of the report
	// the page ended with: the reports of higher Seq follow it.
	old := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "u1#%020d", t0.UnixMicro()+1))
	if page, err := s.PendingReports(t.Context(), old, 10); err != nil || !slices.Equal(messageIDs(page.Reports), []string{"a2", "b2"}) && !slices.Equal(messageIDs(page.Reports), []string{"b2", "a2"}) {
		t.Errorf("PendingReports after an earlier version's cursor = %q, %v; want a2 and b2", messageIDs(page.Reports), err)
	}
	for limit := 1; limit <= len(ids); limit++ {
		var got []string
		cursor := ""
		for range len(ids) + 1 {
			page, err := s.PendingReports(t.Context(), cursor, limit)
			if err != nil {
				t.Fatalf("PendingReports(limit %d) = %v", limit, err)
			}
			got = append(got, messageIDs(page.Reports)...)
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			t.Errorf("PendingReports by %d listed %q, want %q each once", limit, got, ids)
		}
	}
}
