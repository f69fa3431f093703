package server

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// requestIDHeader carries a request's id in both directions, over HTTP and as
// gRPC metadata, so a caller can quote it and operators can find its log line.
const requestIDHeader = "x-request-id"

// requestIDKey is the context key of a request's *requestInfo.
type requestIDKey struct{}

// requestInfo is what the request log line of a request learns while it is
// served: its id, and why it was refused when it was (401, 403). A gateway
// call's interceptor writes the reason for the HTTP line; the request's
// goroutines write it before the line is written.
type requestInfo struct {
	id     string
	reason string
}

// validRequestID accepts ids a caller may choose, 1 to 64 letters, digits
// and "._-"; anything else is replaced, so that logs never carry arbitrary
// caller text.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if info, _ := ctx.Value(requestIDKey{}).(*requestInfo); info != nil {
		return info.id
	}
	return ""
}

// infoOf returns the *requestInfo of ctx, or nil.
func infoOf(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(requestIDKey{}).(*requestInfo)
	return info
}

// requestIDPrefix makes this process's request ids unique among processes;
// requestCounter makes them unique within it, without a random read per call.
var (
	requestIDPrefix = uuid.NewString()[:18]
	requestCounter  atomic.Uint64
)

// withRequestID returns ctx carrying id, choosing a new one when id is unusable.
func withRequestID(ctx context.Context, id string) (context.Context, string) {
	if !validRequestID(id) {
		var b [64]byte
		id = string(strconv.AppendUint(append(b[:0], requestIDPrefix...), requestCounter.Add(1), 16))
	}
	return &requestContext{Context: ctx, info: requestInfo{id: id}}, id
}

// requestContext is a context that carries its request's requestInfo: one
// allocation per request, where context.WithValue and the info are two.
type requestContext struct {
	context.Context
	info requestInfo
}

// Value returns the request's *requestInfo for requestIDKey, and asks the
// parent for any other key.
func (c *requestContext) Value(key any) any {
	if _, ok := key.(requestIDKey); ok {
		return &c.info
	}
	return c.Context.Value(key)
}

// withCallRequestID gives a gRPC call its request id, the caller's
// x-request-id when it is sane, else a new one.
func withCallRequestID(ctx context.Context) context.Context {
	var id string
	if v := metadata.ValueFromIncomingContext(ctx, requestIDHeader); len(v) > 0 {
		id = v[0]
	}
	ctx, _ = withRequestID(ctx, id)
	return ctx
}

// trailRequestID returns the request id of a failed gRPC call to its caller,
// as x-request-id trailer metadata, to quote when asking why. A call that
// succeeds does not carry it: one more metadata field each way cost about 8 %
// of the throughput of a partner-token call (BenchmarkPartnerToken_GRPC), and
// a caller that wants to find a successful call's log line sends its own id.
func trailRequestID(ctx context.Context) {
	_ = grpc.SetTrailer(ctx, metadata.MD{requestIDHeader: {RequestID(ctx)}})
}
