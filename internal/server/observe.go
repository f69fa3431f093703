package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// observeInterceptor gives every gRPC call its request id (withCallRequestID),
// returned to the caller when the call fails (trailRequestID), serves it by
// next, counts it in metrics and logs one line per call: method, code,
// duration and request id. A call that comes through the gateway keeps the id
// of its HTTP request, which the HTTP response carries, and is counted but not
// logged, as its HTTP request line is.
//
// The line is hand-written rather than go-grpc-middleware's logging
// interceptor, which cost 13 % of the CPU of a partner-token call for the same
// line with more fields; id, metrics and log are one interceptor, sharing one
// reading of the clock, as each level of the chain costs every call.
func observeInterceptor(logger *slog.Logger, metrics *grpcMetrics, next grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		gateway := inProcess(ctx) && RequestID(ctx) != ""
		if !gateway {
			ctx = withCallRequestID(ctx)
		}
		series := metrics.method(info.FullMethod)
		series.begin()
		start := time.Now()
		resp, err := next(ctx, req, info, handler)
		end := time.Now()
		code := status.Code(err)
		if err != nil && !gateway {
			trailRequestID(ctx)
		}
		series.end(code, end.Sub(start))
		var reason string
		if code == codes.Unauthenticated || code == codes.PermissionDenied {
			// The status message the caller gets too: it never holds the token.
			reason = status.Convert(err).Message()
		}
		if gateway {
			if ri := infoOf(ctx); ri != nil && reason != "" {
				ri.reason = reason // for the HTTP request's line
			}
			return resp, err
		}
		level := codeLevel(code)
		if probe(info.FullMethod) {
			level = slog.LevelDebug
		}
		attrs := []slog.Attr{
			slog.String("method", info.FullMethod),
			slog.String("code", code.String()),
			slog.Int64("duration_us", end.Sub(start).Microseconds()),
		}
		if reason != "" {
			attrs = append(attrs, slog.String("reason", reason))
		}
		logLine(ctx, logger, end, level, "grpc call", attrs...)
		return resp, err
	}
}

// probe reports whether method is a health or readiness probe, whose calls
// are logged at Debug: load balancers make them every few seconds.
func probe(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/broker.v1.ReadinessService/")
}

// codeLevel is the level of the log line of a call that ended with code:
// errors of the caller's making are Info, the broker's being unavailable or
// late Warn, and anything else Error.
func codeLevel(code codes.Code) slog.Level {
	switch code {
	case codes.OK, codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition,
		codes.Unauthenticated, codes.PermissionDenied, codes.Canceled, codes.Aborted:
		return slog.LevelInfo
	case codes.Unavailable, codes.DeadlineExceeded:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// logLine logs a request's line, at time t, as logger.LogAttrs would but
// without looking up the caller's program counter, which the broker's handlers
// never print and which cost a stack walk per call.
func logLine(ctx context.Context, logger *slog.Logger, t time.Time, level slog.Level, msg string, attrs ...slog.Attr) {
	h := logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r) // nowhere to report a log's error
}
