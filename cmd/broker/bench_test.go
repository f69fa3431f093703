package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	bbolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// parallelism is the number of concurrent callers per CPU in the throughput
// benchmarks: a broker serves many callers at once, and with one caller per CPU
// a loopback benchmark measures scheduling latency more than work.
const parallelism = 16

// runParallel calls call from parallelism callers per CPU, b.N times in all,
// with the timer reset and allocations reported; an error fails the benchmark
// and stops its caller.
func runParallel(b *testing.B, call func() error) {
	b.Helper()
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchmarkGetPartnerToken links a user on h and asks for their partner token
// over gRPC, b.N times.
func benchmarkGetPartnerToken(b *testing.B, h *harness) {
	h.link("bench")
	client := brokerv1.NewPartnerTokenServiceClient(h.conn)
	ctx := withBearer(context.Background(), h.clientToken("broker:tokens"))
	req := &brokerv1.GetPartnerTokenRequest{UserId: "bench"}
	runParallel(b, func() error {
		_, err := client.GetPartnerToken(ctx, req)
		return err
	})
}

// BenchmarkPartnerToken_GRPC compares GetPartnerToken over gRPC on loopback
// (fresh token, bbolt, bearer JWT checked, request log line and metrics kept,
// the log written to a file as a process's stdout would be) with its floor: a
// bare grpc-go server's unary health check, with no interceptors, store or
// authentication, sent the same bearer token. The two run in turns within one
// run, so that the machine's load weighs on both; ns/op is the broker's,
// floor-ns/op the floor's, and ratio the broker's throughput over the floor's
// (goal: >= 0.90).
func BenchmarkPartnerToken_GRPC(b *testing.B) {
	h := newHarness(b)
	h.link("bench")
	token := h.clientToken("broker:tokens")
	client := brokerv1.NewPartnerTokenServiceClient(h.conn)
	ctx := withBearer(context.Background(), token)
	req := &brokerv1.GetPartnerTokenRequest{UserId: "bench"}
	floor := healthClient(b)
	floorReq := &healthpb.HealthCheckRequest{}
	compareInTurns(b,
		func() error { _, err := client.GetPartnerToken(ctx, req); return err },
		func() error { _, err := floor.Check(ctx, floorReq); return err })
}

// BenchmarkPartnerToken_HTTP compares POST /v1/partner-token through the HTTP
// gateway (every check, log line and metric of the gRPC call kept) with its
// floor: a bare net/http handler that reads the request body and answers the
// same JSON. Both are called by one HTTP client that keeps a connection per
// caller, with the same bearer token, in turns within one run; ns/op is the
// broker's, floor-ns/op the floor's, and ratio the broker's throughput over
// the floor's (goal: >= 0.60).
func BenchmarkPartnerToken_HTTP(b *testing.B) {
	h := newHarness(b)
	h.link("bench")
	token := h.clientToken("broker:tokens")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallelism * runtime.GOMAXPROCS(0)}}
	b.Cleanup(client.CloseIdleConnections)
	post := func(url string) (string, error) {
		req, err := http.NewRequest("POST", url, strings.NewReader(`{"user_id":"bench"}`))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return string(body), nil
	}
	answer, err := post(h.base + "/v1/partner-token")
	if err != nil {
		b.Fatal(err)
	}
	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}))
	b.Cleanup(floor.Close)
	compareInTurns(b,
		func() error { _, err := post(h.base + "/v1/partner-token"); return err },
		func() error { _, err := post(floor.URL + "/v1/partner-token"); return err })
}

// healthClient starts a bare gRPC server with only the health service, on a
// loopback port, and returns a client of it; both stop when the benchmark
// ends.
func healthClient(b *testing.B) healthpb.HealthClient {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// turns is how many times compareInTurns switches between the broker and its
// floor in one run.
const turns = 20

// compareInTurns calls broker b.N times and floor as many times, in turns of
// about b.N/turns calls each (the broker first in one turn, the floor first in
// the next), from parallelism callers per CPU. Only the broker's calls are
// timed for ns/op. It reports the floor's time per call as floor-ns/op, and as
// ratio the median over turns of the broker's throughput over the floor's:
// the median, because other work on a shared machine comes in bursts that
// would make a turn or two meaningless. It also reports the CPU time this
// process spent per call (client and server, user and system) on each side,
// cpu-ns/op and floor-cpu-ns/op, and their ratio as cpu-ratio, which other
// processes' load disturbs less. An error fails the benchmark.
func compareInTurns(b *testing.B, broker, floor func() error) {
	b.Helper()
	b.ReportAllocs()
	callers := parallelism * runtime.GOMAXPROCS(0)
	var floorTime, brokerCPU, floorCPU time.Duration
	var ratios []float64
	// measure makes n calls of call and returns the time they took and the
	// CPU time the process spent meanwhile.
	measure := func(n int, call func() error) (elapsed, cpu time.Duration) {
		cpu0, start := cpuTime(b), time.Now()
		callConcurrently(b, n, callers, call)
		return time.Since(start), cpuTime(b) - cpu0
	}
	b.ResetTimer()
	for turn := range turns {
		n := b.N*(turn+1)/turns - b.N*turn/turns // b.N calls in all
		if n == 0 {
			continue
		}
		var f, fCPU time.Duration
		timeFloor := func() {
			b.StopTimer()
			f, fCPU = measure(n, floor)
			b.StartTimer()
		}
		if turn%2 == 1 {
			timeFloor()
		}
		d, dCPU := measure(n, broker)
		if turn%2 == 0 {
			timeFloor()
		}
		floorTime, floorCPU, brokerCPU = floorTime+f, floorCPU+fCPU, brokerCPU+dCPU
		ratios = append(ratios, float64(f)/float64(d))
	}
	b.StopTimer()
	if len(ratios) > 0 {
		slices.Sort(ratios)
		b.ReportMetric(float64(floorTime.Nanoseconds())/float64(b.N), "floor-ns/op")
		b.ReportMetric(ratios[len(ratios)/2], "ratio")
		b.ReportMetric(float64(brokerCPU.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64(floorCPU.Nanoseconds())/float64(b.N), "floor-cpu-ns/op")
		b.ReportMetric(float64(floorCPU)/float64(brokerCPU), "cpu-ratio")
	}
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// callConcurrently makes n calls of call from at most callers goroutines and
// returns when all have ended; an error fails the benchmark and stops its
// caller.
func callConcurrently(b *testing.B, n, callers int, call func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(callers, n) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkReciprocal measures Alexa's hand-over end to end: form, JWT check,
// code exchange with the local LWA simulator, sealing and the bbolt write.
func BenchmarkReciprocal(b *testing.B) {
	// Every hand-over comes from Alexa's one client: its rate limit is off, or
	// the benchmark would measure 429s after the first 1200.
	h := newHarnessWith(b, sim.SetOptions{}, map[string]string{"BROKER_AUTHORIZE_RATE_CLIENT": "0"})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		user := "user-" + strconv.Itoa(i)
		i++
		form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor(user)}, "client_id": {alexaClient}}
		if status, body, _ := h.authorize(form, "Bearer "+h.userToken(user)); status != 200 {
			b.Fatalf("%d %s", status, body)
		}
	}
}

// BenchmarkSubmitProfileReport measures reports accepted per second over gRPC:
// validation, the link check and the durable write to the outbox. Delivery to
// the simulator runs meanwhile, as it would in production.
func BenchmarkSubmitProfileReport(b *testing.B) {
	h := newHarness(b)
	const users = 50
	for u := range users {
		h.link("bench-" + strconv.Itoa(u))
	}
	client := brokerv1.NewProfileReportServiceClient(h.conn)
	ctx := withBearer(context.Background(), h.clientToken("broker:profiles"))
	var n atomic.Int64
	runParallel(b, func() error {
		user := "bench-" + strconv.Itoa(int(n.Add(1))%users)
		_, err := client.SubmitProfileReport(ctx, benchReport(user))
		return err
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}

// BenchmarkDeliverProfileReports measures reports delivered per second to the
// local Alexa simulator: b.N reports of b.N users (so none supersedes another)
// are submitted, and the clock runs until the last is delivered.
func BenchmarkDeliverProfileReports(b *testing.B) {
	h := newHarness(b)
	users := make([]string, b.N)
	for i := range users {
		users[i] = "deliver-" + strconv.Itoa(i)
		h.link(users[i])
	}
	client := brokerv1.NewProfileReportServiceClient(h.conn)
	ctx := withBearer(context.Background(), h.clientToken("broker:profiles"))
	b.ResetTimer()
	for _, u := range users {
		if _, err := client.SubmitProfileReport(ctx, benchReport(u)); err != nil {
			b.Fatal(err)
		}
	}
	for {
		if h.sims.Alexa.Stats().Delivered >= b.N {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
}

func benchReport(user string) *brokerv1.SubmitProfileReportRequest {
	return &brokerv1.SubmitProfileReportRequest{UserId: user, Profiles: []*brokerv1.Profile{{
		ProfileId: "baby-1",
		Name:      &brokerv1.ProfileName{FirstName: "Jennifer", NickNames: []string{"Jenny"}},
		Capabilities: []*brokerv1.Capability{{
			Name: "Alexa.Health.Sleep", Type: "AlexaInterface", Version: "1", SupportedOperations: []string{"Get", "Start", "Stop"},
		}},
	}}}
}

// BenchmarkDynamo_GetPartnerToken measures partner tokens over gRPC on the
// DynamoDB store (dynalite on loopback); compare with
// BenchmarkDynamo_RawGetItem, a bare GetItem of the same link item on the same
// server.
func BenchmarkDynamo_GetPartnerToken(b *testing.B) {
	h, _, _ := newDynamoHarness(b)
	benchmarkGetPartnerToken(b, h)
}

// BenchmarkDynamo_RawGetItem reads the link item of one user with the SDK's
// GetItem and nothing else: the ceiling of BenchmarkDynamo_GetPartnerToken.
func BenchmarkDynamo_RawGetItem(b *testing.B) {
	h, endpoint, table := newDynamoHarness(b)
	h.link("bench")
	db := dynamotest.Client(endpoint)
	in := &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		dynamo.AttrPK: &types.AttributeValueMemberS{Value: "USER#bench"},
		dynamo.AttrSK: &types.AttributeValueMemberS{Value: "LINK"},
	}}
	if out, err := db.GetItem(context.Background(), in); err != nil || len(out.Item) == 0 {
		b.Fatalf("GetItem of the link: %v, %d attributes", err, len(out.Item))
	}
	runParallel(b, func() error {
		_, err := db.GetItem(context.Background(), in)
		return err
	})
}

// BenchmarkDynamo_Token is the partner-token path without the gRPC edge: the
// token service's Token on a fresh token over the DynamoDB store, to compare
// with BenchmarkDynamo_RawGetItem (the store's one GetItem is its floor).
func BenchmarkDynamo_Token(b *testing.B) {
	endpoint := dynamotest.Start(b)
	table := dynamotest.NewTable(b, endpoint)
	lwaSim := startLWA(b, nil)
	svc := newDynamoTokenService(b, endpoint, table, lwaSim, nil)
	if _, err := svc.Exchange(context.Background(), "bench", tokens.Secret(lwaSim.IssueCodeFor("bench")), ""); err != nil {
		b.Fatal(err)
	}
	runParallel(b, func() error {
		_, err := svc.Token(context.Background(), "bench")
		return err
	})
}

// BenchmarkWebhooks_PartnerTokens measures partner-token calls per second
// with webhooks off, then on with a receiver that answers in 500 ms and a
// backlog of 200 link.linked events being sent meanwhile, in the same run, and
// prints the ratio (goal: no measurable difference).
func BenchmarkWebhooks_PartnerTokens(b *testing.B) {
	perSecond := map[string]float64{}
	for _, tc := range []struct {
		name     string
		settings map[string]string
	}{
		{"Off", map[string]string{"BROKER_WEBHOOK_URL": ""}},
		{"On500ms", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarnessWith(b, sim.SetOptions{}, tc.settings)
			h.sims.Webhooks.SetDelay(500 * time.Millisecond)
			for i := range 200 {
				h.link(fmt.Sprintf("hook-%d", i))
			}
			benchmarkGetPartnerToken(b, h)
			perSecond[tc.name] = float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(perSecond[tc.name], "calls/s")
			if tc.settings == nil && b.N > 1000 && len(h.sims.Webhooks.Received()) == 0 {
				b.Error("no webhook was sent during the run")
			}
		})
	}
	if off, on := perSecond["Off"], perSecond["On500ms"]; off > 0 && on > 0 {
		fmt.Printf("partner tokens/s: webhooks off %.0f, on (receiver 500 ms) %.0f, ratio on/off %.3f\n", off, on, on/off)
	}
}

// alexaEventCallers is the number of concurrent callers of the Alexa event
// benchmarks, whatever the number of CPUs.
const alexaEventCallers = 64

// runCallers calls call(i) for i from 0 to b.N-1 from callers goroutines,
// with the timer reset and allocations reported, and stops the timer once the
// last call returned; an error fails the benchmark and stops its caller.
func runCallers(b *testing.B, callers int, call func(i int) error) {
	b.Helper()
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := call(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
}

// alexaEventRequests returns a function that makes the i-th request of a run:
// a thermostat's ChangeReport with its context, of one of users users
// ("bench-0" …), with a message id of its own.
func alexaEventRequests(tb testing.TB, users int) func(i int) *brokerv1.SubmitAlexaEventRequest {
	tb.Helper()
	var event, context map[string]any
	if err := json.Unmarshal([]byte(changeReport("template", "thermostat-livingroom")), &event); err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal([]byte(changeContext), &context); err != nil {
		tb.Fatal(err)
	}
	ev, err := structpb.NewStruct(event)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, err := structpb.NewStruct(context)
	if err != nil {
		tb.Fatal(err)
	}
	return func(i int) *brokerv1.SubmitAlexaEventRequest {
		e := proto.Clone(ev).(*structpb.Struct)
		e.Fields["header"].GetStructValue().Fields["messageId"] = structpb.NewStringValue(fmt.Sprintf("bench-event-%08d", i))
		return &brokerv1.SubmitAlexaEventRequest{UserId: "bench-" + strconv.Itoa(i%users), Event: e, Context: ctx}
	}
}

// BenchmarkAlexaEvents_Accept measures Alexa events accepted per second over
// gRPC on bbolt (the envelope check, the link check and the durable write to
// the outbox) from 64 concurrent callers, with delivery to the simulator
// running meanwhile as it would in production. Its floor, in the same run and
// the same temp dir, is raw bbolt: 64 writers putting 1 KiB values with
// DB.Batch, which shares one commit (one fsync) among concurrent writers. It
// prints events/s, the floor's puts/s and their ratio.
func BenchmarkAlexaEvents_Accept(b *testing.B) {
	dir := b.TempDir()
	var files atomic.Int64
	file := func(name string) string { return filepath.Join(dir, fmt.Sprintf("%s-%d.db", name, files.Add(1))) }
	perSecond := map[string]float64{}
	b.Run("Broker", func(b *testing.B) {
		h := newHarnessWith(b, sim.SetOptions{}, map[string]string{"BROKER_STORE": "bolt:" + file("broker")})
		const users = alexaEventCallers
		for u := range users {
			h.link("bench-" + strconv.Itoa(u))
		}
		client := brokerv1.NewAlexaEventServiceClient(h.conn)
		ctx := withBearer(context.Background(), h.sims.Auth.ClientToken("skill-backend", []string{"broker:events"}, time.Hour))
		request := alexaEventRequests(b, users)
		runCallers(b, alexaEventCallers, func(i int) error {
			_, err := client.SubmitAlexaEvent(ctx, request(i))
			return err
		})
		perSecond["Broker"] = float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(perSecond["Broker"], "events/s")
	})
	b.Run("BoltBatchFloor", func(b *testing.B) {
		db, err := bbolt.Open(file("floor"), 0o600, &bbolt.Options{Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		bucket := []byte("events")
		if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
			b.Fatal(err)
		}
		value := bytes.Repeat([]byte{'e'}, 1024)
		runCallers(b, alexaEventCallers, func(i int) error {
			return db.Batch(func(tx *bbolt.Tx) error {
				return tx.Bucket(bucket).Put(fmt.Appendf(nil, "event-%08d", i), value)
			})
		})
		perSecond["BoltBatchFloor"] = float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(perSecond["BoltBatchFloor"], "puts/s")
	})
	if events, floor := perSecond["Broker"], perSecond["BoltBatchFloor"]; events > 0 && floor > 0 {
		fmt.Printf("Alexa events accepted/s (gRPC, %d callers, bbolt): %.0f; floor, bbolt Batch puts of 1 KiB/s (%d writers): %.0f; ratio %.3f\n",
			alexaEventCallers, events, alexaEventCallers, floor, events/floor)
	}
}

// BenchmarkAlexaEvents_Deliver measures Alexa events delivered per second to
// the simulator's Event Gateway: b.N events of up to 200 users are submitted
// over gRPC by 64 callers, and the clock runs until the gateway has accepted
// the last one. A user's events go out one at a time, in order.
func BenchmarkAlexaEvents_Deliver(b *testing.B) {
	h := newHarness(b)
	users := min(b.N, 200)
	for u := range users {
		h.link("bench-" + strconv.Itoa(u))
	}
	client := brokerv1.NewAlexaEventServiceClient(h.conn)
	ctx := withBearer(context.Background(), h.sims.Auth.ClientToken("skill-backend", []string{"broker:events"}, time.Hour))
	request := alexaEventRequests(b, users)
	gateway := h.sims.Alexa.Events()
	runCallers(b, alexaEventCallers, func(i int) error {
		_, err := client.SubmitAlexaEvent(ctx, request(i))
		return err
	})
	b.StartTimer()
	for gateway.Stats().Delivered < b.N {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
