package server

import (
	"context"
	"regexp"
	"strconv"
	"sync/atomic"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// requestIDHeader carries a request's id in both directions, over HTTP and as
// gRPC metadata, so a caller can quote it and operators can find its log line.
const requestIDHeader = "x-request-id"

// requestIDKey is the context key of a request's id.
type requestIDKey struct{}

// validRequestID accepts ids a caller may choose; anything else is replaced, so
// that logs never carry arbitrary caller text.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDPrefix makes this process's request ids unique among processes;
// requestCounter makes them unique within it, without a random read per call.
var (
	requestIDPrefix = uuid.NewString()[:18]
	requestCounter  atomic.Uint64
)

// withRequestID returns ctx carrying id, choosing a new one when id is unusable.
func withRequestID(ctx context.Context, id string) (context.Context, string) {
	if !validRequestID.MatchString(id) {
		id = requestIDPrefix + strconv.FormatUint(requestCounter.Add(1), 16)
	}
	return context.WithValue(ctx, requestIDKey{}, id), id
}

// requestIDInterceptor gives every call a request id and returns it in the
// response header metadata: the caller's x-request-id when it is sane, else a
// new one. A call from the gateway keeps the id of its HTTP request, found in
// its context, and returns nothing: the HTTP response carries the id.
func requestIDInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if inProcess(ctx) && RequestID(ctx) != "" {
		return handler(ctx, req)
	}
	var id string
	if v := metadata.ValueFromIncomingContext(ctx, requestIDHeader); len(v) > 0 {
		id = v[0]
	}
	ctx, id = withRequestID(ctx, id)
	_ = grpc.SetHeader(ctx, metadata.MD{requestIDHeader: {id}})
	return handler(ctx, req)
}
