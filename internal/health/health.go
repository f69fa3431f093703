// Package health answers the questions load balancers and operators ask of a
// running broker: is the process alive (/healthz), can it serve (/readyz: the
// store answers), and the same readiness as grpc.health.v1 for gRPC clients
// (and, for load balancers that read only a gRPC status code, as Ready).
package health

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Probe reports whether a dependency answers; nil means ready.
type Probe func(ctx context.Context) error

// Checker tracks the broker's liveness and readiness and serves them over HTTP
// and grpc.health.v1. It is safe for concurrent use.
type Checker struct {
	grpc     *grpchealth.Server
	probe    Probe
	timeout  time.Duration
	stopping atomic.Bool

	mu       sync.Mutex
	services []string
}

// New returns a Checker whose readiness is probe's answer; a nil probe is
// always ready.
func New(probe Probe) *Checker {
	if probe == nil {
		probe = func(context.Context) error { return nil }
	}
	return &Checker{grpc: grpchealth.NewServer(), probe: probe, timeout: 2 * time.Second}
}

// Register adds the grpc.health.v1 service to s and marks the overall service ""
// as SERVING.
func (c *Checker) Register(s grpc.ServiceRegistrar) {
	healthpb.RegisterHealthServer(s, c.grpc)
	c.grpc.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
}

// Serving marks a gRPC service (by its full name) as SERVING. Call it as each
// service is registered.
func (c *Checker) Serving(service string) {
	c.mu.Lock()
	c.services = append(c.services, service)
	c.mu.Unlock()
	c.grpc.SetServingStatus(service, healthpb.HealthCheckResponse_SERVING)
}

// Shutdown marks every service NOT_SERVING and makes /readyz answer 503, so that
// load balancers stop sending before the listeners close.
func (c *Checker) Shutdown() {
	c.stopping.Store(true)
	c.grpc.Shutdown()
}

// Check returns nil when the broker can serve: it is not shutting down and the
// probe answers within the checker's time-out. It also sets the gRPC status of
// "" and of every registered service to match.
func (c *Checker) Check(ctx context.Context) error {
	if c.stopping.Load() {
		return errShuttingDown
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err := c.probe(ctx)
	status := healthpb.HealthCheckResponse_SERVING
	if err != nil {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	c.mu.Lock()
	services := append([]string{""}, c.services...)
	c.mu.Unlock()
	if !c.stopping.Load() { // Shutdown's NOT_SERVING is final.
		for _, s := range services {
			c.grpc.SetServingStatus(s, status)
		}
	}
	return err
}

// Watch calls Check every interval until ctx ends, so that gRPC health follows
// the store's readiness between HTTP probes.
func (c *Checker) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Check(ctx)
		}
	}
}

type shuttingDown struct{}

func (shuttingDown) Error() string { return "shutting down" }

var errShuttingDown error = shuttingDown{}

// Livez answers 200 while the process runs: the /healthz handler.
func (c *Checker) Livez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}

// Ready returns "" when Check passes, else the reason the broker cannot serve,
// fit to show any caller: "shutting down" or "store unavailable", never the
// probe's error.
func (c *Checker) Ready(ctx context.Context) (reason string) {
	switch err := c.Check(ctx); {
	case err == nil:
		return ""
	case err == errShuttingDown:
		return "shutting down"
	}
	return "store unavailable"
}

// Readyz answers 200 when Check passes and 503 otherwise: the /readyz handler.
// The body names the reason (see Ready) but never details internal errors.
func (c *Checker) Readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if reason := c.Ready(r.Context()); reason != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(reason + "\n"))
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("ok\n"))
}
