package server

import (
	"context"

	"google.golang.org/protobuf/types/known/emptypb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/health"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// readinessService answers broker.v1.ReadinessService: the broker's readiness
// as a status code, for load balancers that read nothing else of a gRPC
// health check (the AWS Application Load Balancer).
type readinessService struct {
	brokerv1.UnimplementedReadinessServiceServer
	health *health.Checker
}

var _ brokerv1.ReadinessServiceServer = readinessService{}

// Check answers OK when the broker can serve, as /readyz answers 200, and an
// EUNAVAILABLE error naming the reason otherwise.
func (r readinessService) Check(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	if reason := r.health.Ready(ctx); reason != "" {
		return nil, tokens.Errorf(tokens.EUNAVAILABLE, "not ready: %s", reason)
	}
	return &emptypb.Empty{}, nil
}
