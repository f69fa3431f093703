package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	bbolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/bolt"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// acceptWriters is how many callers the acceptance benchmarks run at once:
// many companion backends submitting reports together, each waiting for its
// answer.
const acceptWriters = 64

// acceptUsers is how many linked users the acceptance benchmarks submit for,
// in turn.
const acceptUsers = 1000

// runWriters calls call with the numbers 0 to b.N-1, from acceptWriters
// goroutines at once, with the timer reset and allocations reported; an error
// fails the benchmark and stops its goroutine.
func runWriters(b *testing.B, call func(i int) error) {
	b.Helper()
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range acceptWriters {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := call(int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}

// acceptRounds is how many turns BenchmarkAccept takes: each round runs the
// floor and then the broker, so that a load on the machine that comes and goes
// weighs on both alike.
const acceptRounds = 3

// BenchmarkAccept runs, in turns, acceptRounds times in one run, the floor and
// the broker's acceptance of deliveries on the bbolt store, each from
// acceptWriters callers on a new file in a temporary directory, and prints
// per round, and over all rounds, the ratio of deliveries accepted per second
// to the floor's puts per second:
//
//   - RawBatch: raw bbolt DB.Batch puts of 1 KiB values under new keys, with
//     bbolt's default batch settings, and nothing else;
//   - ProfileReport: reports.Service.Submit of a profile report of one of
//     acceptUsers linked users, through the link check (a read of the store)
//     to the durable write of the outbox;
//   - AlexaEvent: reports.Service.SubmitAlexaEvent alike, of a ChangeReport.
//
// Each call returns once its write is on disk (fsync'd).
func BenchmarkAccept(b *testing.B) {
	cases := []struct {
		name  string
		bench func(b *testing.B)
	}{
		{"RawBatch", benchmarkRawBatch},
		{"ProfileReport", func(b *testing.B) { benchmarkAccept(b, reports.KindProfileReport) }},
		{"AlexaEvent", func(b *testing.B) { benchmarkAccept(b, reports.KindAlexaEvent) }},
	}
	total := map[string]float64{} // writes per second, summed over the rounds
	for round := range acceptRounds {
		perSecond := map[string]float64{}
		for _, tc := range cases {
			b.Run(tc.name, func(b *testing.B) {
				tc.bench(b)
				perSecond[tc.name] = float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(perSecond[tc.name], "writes/s")
			})
			total[tc.name] += perSecond[tc.name]
		}
		printAcceptRatios(fmt.Sprintf("round %d", round+1), perSecond)
	}
	printAcceptRatios("all rounds", total)
}

// printAcceptRatios prints the rates of BenchmarkAccept's cases, and the
// ratios of the broker's to the floor's.
func printAcceptRatios(what string, perSecond map[string]float64) {
	floor := perSecond["RawBatch"]
	if floor == 0 {
		return
	}
	fmt.Printf("bolt, %d writers, %s: raw Batch puts of 1 KiB %.0f/s; profile reports %.0f/s (ratio %.2f); Alexa events %.0f/s (ratio %.2f)\n",
		acceptWriters, what, floor, perSecond["ProfileReport"], perSecond["ProfileReport"]/floor,
		perSecond["AlexaEvent"], perSecond["AlexaEvent"]/floor)
}

// benchmarkRawBatch puts b.N values of 1 KiB under new keys into one bucket of
// a new bbolt file with DB.Batch, from acceptWriters goroutines.
func benchmarkRawBatch(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("values")
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket(bucket)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 1<<10)
	runWriters(b, func(i int) error {
		key := binary.BigEndian.AppendUint64(nil, uint64(i))
		return db.Batch(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucket).Put(key, value)
		})
	})
}

// benchmarkAccept submits b.N deliveries of kind through a reports.Service
// on a new bbolt store, from acceptWriters goroutines, each for one of
// acceptUsers users linked beforehand.
func benchmarkAccept(b *testing.B, kind reports.Kind) {
	store, err := bolt.Open(filepath.Join(b.TempDir(), "broker.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	submitAll(b, store, kind)
}

// acceptStore is what the acceptance benchmarks need of a store: the links
// of the default skill and the outbox.
type acceptStore interface {
	tokens.Store
	reports.Store
}

// submitAll links acceptUsers users in store, then submits b.N deliveries of
// kind through a reports.Service on store, from acceptWriters goroutines,
// each for one of the users.
func submitAll(b *testing.B, store acceptStore, kind reports.Kind) {
	ctx := context.Background()
	users := make([]string, acceptUsers)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(acceptWriters)
	for i := range users {
		users[i] = "accept-" + strconv.Itoa(i)
		g.Go(func() error { return store.PutLink(gctx, storetest.NewLink(users[i])) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	svc := reports.NewService(store, linkChecker{store})
	profiles := storetest.NewReport("m", "u", svc.Now()).Profiles
	runWriters(b, func(i int) error {
		user := users[i%len(users)]
		var err error
		if kind == reports.KindAlexaEvent {
			_, err = svc.SubmitAlexaEvent(ctx, "", user, alexaEvent(strconv.Itoa(i)))
		} else {
			_, err = svc.Submit(ctx, "", user, "", profiles)
		}
		return err
	})
}

// BenchmarkAccept_Dynamo is BenchmarkAccept on the DynamoDB store, on one
// dynalite server on loopback: in turns, acceptRounds times, raw PutItem
// calls of 1 KiB items under new keys, with the SDK and nothing else, then
// the broker's acceptance of profile reports and of Alexa events, each from
// acceptWriters callers on a new table (in clock order), and of profile
// reports on a table in counter order, as brokers from before clock order
// leave it; it prints the ratios of deliveries accepted per second to the
// floor's puts per second.
func BenchmarkAccept_Dynamo(b *testing.B) {
	endpoint := dynamotest.Start(b)
	cases := []struct {
		name  string
		bench func(b *testing.B)
	}{
		{"RawPutItem", func(b *testing.B) { benchmarkRawPutItem(b, endpoint) }},
		{"ProfileReport", func(b *testing.B) { benchmarkAcceptDynamo(b, endpoint, reports.KindProfileReport, false) }},
		{"AlexaEvent", func(b *testing.B) { benchmarkAcceptDynamo(b, endpoint, reports.KindAlexaEvent, false) }},
		{"ProfileReport_CounterOrder", func(b *testing.B) { benchmarkAcceptDynamo(b, endpoint, reports.KindProfileReport, true) }},
	}
	total := map[string]float64{}
	for round := range acceptRounds {
		perSecond := map[string]float64{}
		for _, tc := range cases {
			b.Run(tc.name, func(b *testing.B) {
				tc.bench(b)
				perSecond[tc.name] = float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(perSecond[tc.name], "writes/s")
			})
			total[tc.name] += perSecond[tc.name]
		}
		printDynamoRatios(fmt.Sprintf("round %d", round+1), perSecond)
	}
	printDynamoRatios("all rounds", total)
}

// printDynamoRatios prints the rates of BenchmarkAccept_Dynamo's cases, and
// the ratios of the broker's to the floor's.
func printDynamoRatios(what string, perSecond map[string]float64) {
	floor := perSecond["RawPutItem"]
	if floor == 0 {
		return
	}
	fmt.Printf("dynalite, %d writers, %s: raw PutItem of 1 KiB %.0f/s; clock order: profile reports %.0f/s (ratio %.2f), Alexa events %.0f/s (ratio %.2f); counter order: profile reports %.0f/s (ratio %.2f)\n",
		acceptWriters, what, floor, perSecond["ProfileReport"], perSecond["ProfileReport"]/floor,
		perSecond["AlexaEvent"], perSecond["AlexaEvent"]/floor,
		perSecond["ProfileReport_CounterOrder"], perSecond["ProfileReport_CounterOrder"]/floor)
}

// newDynamoStore returns the store of a new table on the dynalite server at
// endpoint, created as the broker creates it.
func newDynamoStore(b *testing.B, endpoint string) (store *dynamo.Store, table string) {
	b.Helper()
	table = dynamotest.NewTable(b, endpoint)
	store, err := dynamo.New(context.Background(), dynamo.Options{Table: table, Client: dynamotest.Client(endpoint), CreateTable: true})
	if err != nil {
		b.Fatal(err)
	}
	return store, table
}

// benchmarkRawPutItem puts b.N items of a 1 KiB attribute under new keys into
// a new table with PutItem, from acceptWriters goroutines.
func benchmarkRawPutItem(b *testing.B, endpoint string) {
	_, table := newDynamoStore(b, endpoint)
	db := dynamotest.Client(endpoint)
	value := &types.AttributeValueMemberB{Value: make([]byte, 1<<10)}
	runWriters(b, func(i int) error {
		_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			dynamo.AttrPK: &types.AttributeValueMemberS{Value: "RAW#" + strconv.Itoa(i)},
			dynamo.AttrSK: &types.AttributeValueMemberS{Value: "RAW"},
			"v":           value,
		}})
		return err
	})
}

// benchmarkAcceptDynamo is benchmarkAccept on the store of a new table on the
// dynalite server at endpoint, which starts in clock order; with
// counterOrder, on a store of a table that another made and whose report
// counter a broker from before clock order used, which is in counter order.
func benchmarkAcceptDynamo(b *testing.B, endpoint string, kind reports.Kind, counterOrder bool) {
	store, table := newDynamoStore(b, endpoint)
	if counterOrder {
		_, err := dynamotest.Client(endpoint).UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName: aws.String(table),
			Key: map[string]types.AttributeValue{
				dynamo.AttrPK: &types.AttributeValueMemberS{Value: "COUNTER"},
				dynamo.AttrSK: &types.AttributeValueMemberS{Value: "REPORTS"},
			},
			UpdateExpression:          aws.String("ADD n :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		})
		if err != nil {
			b.Fatal(err)
		}
		if store, err = dynamo.New(context.Background(), dynamo.Options{Table: table, Client: dynamotest.Client(endpoint)}); err != nil {
			b.Fatal(err)
		}
	}
	submitAll(b, store, kind)
}

// alexaEvent returns an Alexa ChangeReport under messageID, as a companion
// backend submits it.
func alexaEvent(messageID string) []byte {
	return []byte(`{"event":{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"` + messageID +
		`","payloadVersion":"3"},"endpoint":{"endpointId":"thermostat-1"},"payload":{"change":{"cause":{"type":"PHYSICAL_INTERACTION"},` +
		`"properties":[{"namespace":"Alexa.ThermostatController","name":"targetSetpoint","value":{"value":21.5,"scale":"CELSIUS"}}]}}},"context":{}}`)
}

// linkChecker is the part of the token services that acceptance uses: Link
// reads the link from the store, as tokens.Services does. The other methods
// belong to delivery, which the acceptance benchmarks do not run.
type linkChecker struct{ store tokens.Store }

var _ reports.Tokens = linkChecker{}

func (c linkChecker) Link(ctx context.Context, _, userID string) (*tokens.Link, error) {
	return c.store.GetLink(ctx, userID)
}

func (linkChecker) Token(context.Context, string, string) (tokens.Token, error) {
	return tokens.Token{}, tokens.Errorf(tokens.EINTERNAL, "no tokens in the acceptance benchmark")
}

func (linkChecker) Refresh(context.Context, string, string) (*tokens.Link, error) {
	return nil, tokens.Errorf(tokens.EINTERNAL, "no refresh in the acceptance benchmark")
}

func (linkChecker) RequireRelink(context.Context, string, string) error {
	return tokens.Errorf(tokens.EINTERNAL, "no relink in the acceptance benchmark")
}
