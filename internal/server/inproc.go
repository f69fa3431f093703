package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// inprocConn is the gateway's connection to the broker's gRPC services: a
// grpc.ClientConnInterface that calls the services registered on it in the
// caller's goroutine, through the same interceptor as the gRPC server, with
// the gateway's outgoing metadata (the Authorization header) as the call's
// incoming metadata. The call's context is the HTTP request's, so the request
// id the HTTP middleware chose is the call's too.
//
// It replaces a loopback connection (bufconn) to the gRPC server, whose gRPC
// framing, protobuf marshalling both ways and goroutine hand-offs were about a
// third of the CPU and half the allocations of an HTTP call. Measured with
// BenchmarkPartnerToken_HTTP in cmd/broker and profiles of it, it was chosen
// over:
//   - grpchan's inprocgrpc channel, which takes the same route but runs each
//     call on a new goroutine and copies messages through jhump/protoreflect:
//     26 more allocations and 2 KB more per HTTP call, and a ratio to the
//     floor ~0.06 lower;
//   - the gateway's RegisterXHandlerServer functions, which call the
//     implementations directly and so need a hand-written wrapper per method
//     to pass the interceptors: 13 fewer allocations per call, a ratio ~0.02
//     higher (within the noise), but a new method whose wrapper is forgotten
//     would answer 501 over HTTP, or, wrapped wrongly, skip the checks. Here
//     the generated method handlers of each ServiceDesc run the interceptor,
//     so no method can skip it.
//
// Only unary methods are served; the broker has no streaming ones.
type inprocConn struct {
	methods     map[string]inprocMethod
	interceptor grpc.UnaryServerInterceptor
}

var (
	_ grpc.ClientConnInterface = (*inprocConn)(nil)
	_ grpc.ServiceRegistrar    = (*inprocConn)(nil)
)

// inprocMethod is one registered method: its generated handler and the
// implementation it calls.
type inprocMethod struct {
	handler grpc.MethodHandler
	impl    any
}

// newInprocConn returns a connection with no services, whose calls pass
// through interceptor.
func newInprocConn(interceptor grpc.UnaryServerInterceptor) *inprocConn {
	return &inprocConn{methods: make(map[string]inprocMethod), interceptor: interceptor}
}

// RegisterService makes the unary methods of desc, implemented by impl,
// callable. It must be called before the first call.
func (c *inprocConn) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, m := range desc.Methods {
		c.methods["/"+desc.ServiceName+"/"+m.MethodName] = inprocMethod{handler: m.Handler, impl: impl}
	}
}

// Invoke calls method with a copy of args and copies its answer into reply.
// The response header and trailer metadata the method sets reach the
// grpc.Header and grpc.Trailer call options. It returns UNIMPLEMENTED for a
// method not registered, and otherwise the error the interceptors and the
// method return.
func (c *inprocConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	m, ok := c.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	stream := &inprocStream{method: method}
	ctx = grpc.NewContextWithServerTransportStream(metadata.NewIncomingContext(ctx, md), stream)
	resp, err := m.handler(m.impl, ctx, func(in any) error {
		proto.Merge(in.(proto.Message), args.(proto.Message))
		return nil
	}, c.interceptor)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = stream.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = stream.trailer
		}
	}
	if err != nil {
		return err
	}
	proto.Merge(reply.(proto.Message), resp.(proto.Message))
	return nil
}

// NewStream refuses every stream: the broker has no streaming methods.
func (c *inprocConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "streams are not served in process")
}

// inprocStream is the server side of one in-process call: it keeps the
// metadata the method sets with grpc.SetHeader, grpc.SendHeader and
// grpc.SetTrailer. Calls run in one goroutine, so it needs no lock.
type inprocStream struct {
	method          string
	header, trailer metadata.MD
}

var _ grpc.ServerTransportStream = (*inprocStream)(nil)

// Method returns the full method name of the call.
func (s *inprocStream) Method() string { return s.method }

// SetHeader adds md to the response header metadata.
func (s *inprocStream) SetHeader(md metadata.MD) error {
	s.header = metadata.Join(s.header, md)
	return nil
}

// SendHeader adds md to the response header metadata; nothing is sent before
// the call returns.
func (s *inprocStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

// SetTrailer adds md to the response trailer metadata.
func (s *inprocStream) SetTrailer(md metadata.MD) error {
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// inProcess reports whether the call of ctx came through the gateway's
// in-process connection.
func inProcess(ctx context.Context) bool {
	_, ok := grpc.ServerTransportStreamFromContext(ctx).(*inprocStream)
	return ok
}
