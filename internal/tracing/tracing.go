// Package tracing sets up OpenTelemetry tracing for the broker: an OTLP/HTTP
// exporter switched on by the standard environment variables
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, with the
// exporter's other OTEL_EXPORTER_OTLP_* settings), W3C trace context
// (traceparent, tracestate) propagated in and out, and the HTTP and gRPC
// instrumentation that starts and carries the spans. Without an endpoint
// tracing is off and costs nothing: no instrumentation is installed at all.
package tracing

import (
	"context"
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// The environment variables that switch tracing on.
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// Tracing is the broker's tracing: on when an OTLP endpoint is configured, off
// (every method a no-op, nothing wrapped) otherwise. The zero value and nil
// are off. It is safe for concurrent use.
type Tracing struct {
	provider   *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
}

// New returns the tracing that getenv's OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT asks for, spans named for service at
// version, batched and exported over OTLP/HTTP; off when both are empty. The
// exporter reads its endpoint and other OTEL_EXPORTER_OTLP_* settings from the
// process environment. It returns an error when the exporter cannot be
// configured (a malformed endpoint); it never waits for the collector.
func New(ctx context.Context, getenv func(string) string, service, version string) (*Tracing, error) {
	if getenv(EnvEndpoint) == "" && getenv(EnvTracesEndpoint) == "" {
		return &Tracing{}, nil
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := sdkresource.Merge(sdkresource.Default(), sdkresource.NewSchemaless(
		attribute.String("service.name", service), attribute.String("service.version", version)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	return &Tracing{
		provider:   sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)),
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t != nil && t.provider != nil }

// TracerProvider returns the provider of the broker's tracers, or nil when
// tracing is off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if !t.Enabled() {
		return nil
	}
	return t.provider
}

// Handler returns h starting a server span for every request, the child of
// the caller's traceparent when it sent one; h itself when tracing is off.
func (t *Tracing) Handler(h http.Handler) http.Handler {
	if !t.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, "http",
		otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.propagator),
		// The method alone: a path holds ids, too many names for a tracing backend.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "HTTP " + r.Method }))
}

// Transport returns base (http.DefaultTransport when nil) starting a client
// span for every request and sending its traceparent; base itself when
// tracing is off.
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if !t.Enabled() {
		return base
	}
	return otelhttp.NewTransport(base, otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.propagator))
}

// ServerOptions returns the gRPC server options that start a server span for
// every call, the child of the caller's traceparent metadata when it sent
// one; none when tracing is off.
func (t *Tracing) ServerOptions() []grpc.ServerOption {
	if !t.Enabled() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.provider), otelgrpc.WithPropagators(t.propagator)))}
}

// Shutdown exports the spans still buffered, within ctx, and stops
// exporting. It returns the exporter's error, if any.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shut down: %w", err)
	}
	return nil
}
