package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/server"
)

// fixedTokens is a hand-written PartnerTokenService that answers every call
// with the same token, as a link's cached token would be.
type fixedTokens struct {
	brokerv1.UnimplementedPartnerTokenServiceServer
}

func (fixedTokens) GetPartnerToken(ctx context.Context, req *brokerv1.GetPartnerTokenRequest) (*brokerv1.GetPartnerTokenResponse, error) {
	return &brokerv1.GetPartnerTokenResponse{AccessToken: "Atza|" + strings.Repeat("x", 300), TokenType: "bearer", ExpiresAt: timestamppb.New(time.Unix(1e9, 0)), ExpiresIn: 3600}, nil
}

// BenchmarkGateway_PartnerToken measures the HTTP handler of POST
// /v1/partner-token alone, without a connection or a client: the request's
// middleware, the gateway, the in-process call through the interceptor, the
// JSON both ways and the log line, the token service replaced by one that
// answers at once. It is steadier than the end-to-end comparison with a bare
// handler (BenchmarkPartnerToken_HTTP in cmd/broker), whose client and
// connections are most of its CPU.
func BenchmarkGateway_PartnerToken(b *testing.B) {
	s := open(b, server.Options{
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Services: server.Services{PartnerTokens: fixedTokens{}}})
	h := server.HTTPHandler(s)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/v1/partner-token", strings.NewReader(`{"user_id":"bench"}`))
			req.Header.Set("Authorization", "Bearer tokens")
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Error(w.Code, w.Body.String()) // not Fatal: this is not the benchmark's goroutine
				return
			}
		}
	})
}
