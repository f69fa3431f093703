package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/health"
	"github.com/reciprocal-broker/broker/internal/server"
)

// TestServer_Readiness: broker.v1.ReadinessService/Check, which a load
// balancer calls with an empty body and no token, answers OK when /readyz
// answers 200, and UNAVAILABLE with the reason (never the store's error)
// otherwise.
func TestServer_Readiness(t *testing.T) {
	stopping := health.New(nil)
	stopping.Shutdown()
	for _, tc := range []struct {
		name      string
		health    *health.Checker
		wantCode  codes.Code
		wantMsg   string
		wantReady int // /readyz status
	}{
		{"Ready", health.New(nil), codes.OK, "", 200},
		{"StoreDown", health.New(func(context.Context) error { return errors.New("dial tcp 10.0.0.7:443: refused") }), codes.Unavailable, "not ready: store unavailable", 503},
		{"ShuttingDown", stopping, codes.Unavailable, "not ready: shutting down", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, server.Options{Health: tc.health})
			_, err := brokerv1.NewReadinessServiceClient(dial(t, s)).Check(t.Context(), &emptypb.Empty{})
			st := status.Convert(err)
			if st.Code() != tc.wantCode || st.Message() != tc.wantMsg {
				t.Errorf("Check = %v %q, want %v %q", st.Code(), st.Message(), tc.wantCode, tc.wantMsg)
			}
			if strings.Contains(st.Message(), "10.0.0.7") {
				t.Errorf("Check's message %q shows the store's error", st.Message())
			}
			if resp, body := do(t, s, "GET", "/readyz", ""); resp.StatusCode != tc.wantReady {
				t.Errorf("/readyz = %d %s, want %d", resp.StatusCode, body, tc.wantReady)
			}
		})
	}
}
