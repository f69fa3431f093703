package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
)

// parallelism is the number of concurrent callers per CPU in the throughput
// benchmarks: a broker serves many callers at once, and with one caller per CPU
// a loopback benchmark measures scheduling latency more than work.
const parallelism = 16

// BenchmarkGetPartnerToken measures partner tokens on a fresh token over gRPC on
// loopback, bearer JWT checked on every call. Compare with BenchmarkEcho.
func BenchmarkGetPartnerToken(b *testing.B) {
	h := newHarness(b)
	h.link("bench")
	client := brokerv1.NewPartnerTokenServiceClient(h.conn)
	ctx := withBearer(context.Background(), h.clientToken("broker:tokens"))
	req := &brokerv1.GetPartnerTokenRequest{UserId: "bench"}
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.GetPartnerToken(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEcho is the yardstick: a bare gRPC server's unary health check on
// loopback, with no interceptors, store or authentication. The client sends
// the same kind of bearer JWT as BenchmarkGetPartnerToken, since carrying it is
// a cost of any authenticated call, not of the broker.
func BenchmarkEcho(b *testing.B) {
	h := newHarness(b)
	token := h.clientToken("broker:tokens")
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
	client := healthpb.NewHealthClient(conn)
	ctx := withBearer(context.Background(), token)
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetPartnerToken_HTTP is the same call through the HTTP gateway,
// which reaches the gRPC server in memory through every interceptor.
func BenchmarkGetPartnerToken_HTTP(b *testing.B) {
	h := newHarness(b)
	h.link("bench")
	token := h.clientToken("broker:tokens")
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", h.base+"/v1/partner-token", strings.NewReader(`{"user_id":"bench"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkReciprocal measures Alexa's hand-over end to end: form, JWT check,
// code exchange with the local LWA simulator, sealing and the bbolt write.
func BenchmarkReciprocal(b *testing.B) {
	h := newHarness(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		user := "user-" + strconv.Itoa(i)
		i++
		form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.lwa.IssueCodeFor(user)}, "client_id": {alexaClient}}
		if status, body, _ := h.authorize(form, "Bearer "+h.userToken(user)); status != 200 {
			b.Fatalf("%d %s", status, body)
		}
	}
}
