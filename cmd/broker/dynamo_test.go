package main

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/lwa"
	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestDynamo_ThreeInstances: three token services, each with its own store
// client, process-local refresh and caches, share one table. 300 concurrent
// partner-token requests on an expired link, spread across them, cause exactly
// one LWA refresh; every caller gets the new token; and the stored refresh token
// is the last one LWA issued.
func TestDynamo_ThreeInstances(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	ctx := t.Context()
	clk := sim.NewClock(time.Now())
	lwaSim := startLWA(t, clk.Now)
	var instances []*tokens.Service
	for range 3 {
		instances = append(instances, newDynamoTokenService(t, endpoint, table, lwaSim, clk.Now))
	}
	if _, err := instances[0].Exchange(ctx, "shared", tokens.Secret(lwaSim.IssueCodeFor("shared")), ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour) // the access token has expired
	lwaSim.SetDelay(100 * time.Millisecond)
	before := lwaSim.Stats().Refreshes

	const callers = 300
	got := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tok, err := instances[i%3].Token(ctx, "shared")
			got[i], errs[i] = tok.AccessToken.Reveal(), err
		}()
	}
	wg.Wait()
	lwaSim.SetDelay(0)
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d (instance %d): %v", i, i%3, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("caller %d got another token than caller 0", i)
		}
	}
	if !lwaSim.ValidAccessToken(got[0]) {
		t.Error("the shared token is not valid at LWA")
	}
	if n := lwaSim.Stats().Refreshes - before; n != 1 {
		t.Errorf("LWA refreshes = %d across three instances, want exactly 1", n)
	}
	// LWA accepts only the newest refresh token of a grant: a refresh with the
	// stored one works only if it is the last one LWA issued.
	if _, err := instances[2].Refresh(ctx, "shared"); err != nil {
		t.Errorf("refresh with the stored refresh token: %v (want it to be the newest)", err)
	}
}

// TestDynamo_Broker boots the whole broker on BROKER_STORE=dynamodb:TABLE and
// runs the story: hand-over, partner token with a refresh, report delivered.
func TestDynamo_Broker(t *testing.T) {
	h, _, _ := newDynamoHarness(t)
	if status, body := h.call("GET", "/readyz", "", ""); status != http.StatusOK {
		t.Fatalf("/readyz = %d %s", status, body)
	}
	h.link("parent")
	h.clock.Advance(56 * time.Minute)
	if tok, status := transports["gRPC"](t, h, h.clientToken("broker:tokens"), "parent"); status != 200 || !h.sims.LWA.ValidAccessToken(tok) {
		t.Fatalf("partner token: status %d", status)
	}
	profiles := h.clientToken("broker:profiles")
	id := h.submit(profiles, jenny("parent", ""))
	h.waitState(profiles, id, "DELIVERED")
	resp, err := brokerv1.NewLinkServiceClient(h.conn).ListLinks(withBearer(t.Context(), h.clientToken("broker:admin")), &brokerv1.ListLinksRequest{})
	if err != nil || len(resp.GetLinks()) != 1 {
		t.Errorf("ListLinks = %v, %v; want the one link", resp, err)
	}
}

// TestDynamo_ClockOrderSetting: on a table whose report counter a broker of
// an earlier version used, the broker keeps counter order, unless
// BROKER_DYNAMODB_CLOCK_ORDER switches the table with its first report.
func TestDynamo_ClockOrderSetting(t *testing.T) {
	for _, tc := range []struct {
		name, setting string
		want          types.AttributeValue // the report counter's n after a report
	}{
		{"Unset", "", &types.AttributeValueMemberN{Value: "2"}},
		{"True", "true", &types.AttributeValueMemberS{Value: "clock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := dynamotest.Start(t)
			table := dynamotest.NewTable(t, endpoint)
			db := dynamotest.Client(endpoint)
			if _, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: db, CreateTable: true}); err != nil {
				t.Fatal(err)
			}
			counter := map[string]types.AttributeValue{
				dynamo.AttrPK: &types.AttributeValueMemberS{Value: "COUNTER"},
				dynamo.AttrSK: &types.AttributeValueMemberS{Value: "REPORTS"},
			}
			if _, err := db.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{ // an earlier broker's report
				TableName: aws.String(table), Key: counter, UpdateExpression: aws.String("ADD n :one"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
			}); err != nil {
				t.Fatal(err)
			}
			fakeAWSEnv(t)
			h := newHarnessWith(t, sim.SetOptions{}, map[string]string{
				"BROKER_STORE":                "dynamodb:" + table,
				"BROKER_DYNAMODB_ENDPOINT":    endpoint,
				"BROKER_DYNAMODB_CLOCK_ORDER": tc.setting,
			})
			h.link("parent")
			profiles := h.clientToken("broker:profiles")
			h.waitState(profiles, h.submit(profiles, jenny("parent", "")), "DELIVERED")
			out, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: counter, ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Item["n"]; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("the report counter holds %#v, want %#v", got, tc.want)
			}
		})
	}
}

// TestDynamo_MissingTableStopsStartUp: without BROKER_DYNAMODB_CREATE_TABLE,
// a table that does not exist stops start-up, naming the table and both ways
// to make it; with it, the same settings start a broker.
func TestDynamo_MissingTableStopsStartUp(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	fakeAWSEnv(t)
	env := testEnv(t.TempDir())
	env["BROKER_STORE"], env["BROKER_DYNAMODB_ENDPOINT"] = "dynamodb:"+table, endpoint
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr; none: it starts
	}{
		{"WithoutCreate", nil, []string{"BROKER_STORE: dynamo: table " + table, "does not exist", "infra/cloudformation", "BROKER_DYNAMODB_CREATE_TABLE=true"}},
		{"CreateFlag", []string{"--dynamodb-create-table"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			var stdout, stderr syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, append([]string{"serve"}, tc.args...), func(k string) string { return env[k] }, &stdout, &stderr)
			}()
			if tc.want == nil {
				waitFor(t, 20*time.Second, "the broker to serve", func() bool { return strings.Contains(stdout.String(), "broker serving") })
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("exit code %d, want 0: %s", code, stderr.String())
				}
				return
			}
			defer cancel()
			if code := <-done; code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q does not say %q", stderr.String(), want)
				}
			}
		})
	}
}

// newDynamoHarness starts dynalite with a fresh table and boots the broker on
// BROKER_STORE=dynamodb:TABLE there, in an AWS environment of made-up
// credentials. It returns the harness, dynalite's endpoint and the table.
func newDynamoHarness(tb testing.TB) (h *harness, endpoint, table string) {
	tb.Helper()
	endpoint = dynamotest.Start(tb)
	table = dynamotest.NewTable(tb, endpoint)
	fakeAWSEnv(tb)
	h = newHarnessWith(tb, sim.SetOptions{}, map[string]string{
		"BROKER_STORE":                 "dynamodb:" + table,
		"BROKER_DYNAMODB_ENDPOINT":     endpoint,
		"BROKER_DYNAMODB_CREATE_TABLE": "true",
	})
	return h, endpoint, table
}

// newDynamoTokenService is one broker instance's token service without the
// broker around it: its own DynamoDB client on table, the tests' sealing key,
// and its own LWA client of lwaSim, on the clock now (nil: time.Now).
func newDynamoTokenService(tb testing.TB, endpoint, table string, lwaSim *sim.LWA, now func() time.Time) *tokens.Service {
	tb.Helper()
	if now == nil {
		now = time.Now
	}
	key, err := seal.ParseKey(testKey)
	if err != nil {
		tb.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	store, err := dynamo.New(context.Background(), dynamo.Options{Table: table, Client: dynamotest.Client(endpoint), CreateTable: true})
	if err != nil {
		tb.Fatal(err)
	}
	client, err := lwa.New(lwa.Options{TokenURL: lwaSim.TokenURL(), ClientID: lwaSim.ClientID(),
		ClientSecret: tokens.Secret(lwaSim.ClientSecret()), Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	svc := tokens.NewService(store, sealer, client)
	svc.Now = now
	return svc
}
