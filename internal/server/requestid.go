package server

import (
	"context"
	"regexp"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// requestIDHeader carries a request's id in both directions, over HTTP and as
// gRPC metadata, so a caller can quote it and operators can find its log line.
const requestIDHeader = "x-request-id"

type requestIDKey struct{}

// validRequestID accepts ids a caller may choose; anything else is replaced, so
// that logs never carry arbitrary caller text.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID returns ctx carrying id, choosing a new one when id is unusable.
func withRequestID(ctx context.Context, id string) (context.Context, string) {
	if !validRequestID.MatchString(id) {
		id = uuid.NewString()
	}
	return context.WithValue(ctx, requestIDKey{}, id), id
}

// requestIDInterceptor takes the caller's x-request-id (the gateway forwards the
// HTTP one) or makes one, and returns it in the response header metadata.
func requestIDInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var id string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDHeader); len(v) > 0 {
			id = v[0]
		}
	}
	ctx, id = withRequestID(ctx, id)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	return handler(ctx, req)
}
