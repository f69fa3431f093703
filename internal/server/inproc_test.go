package server

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
)

// metadataTokens is a hand-written PartnerTokenService that answers with the
// incoming authorization metadata as the token, sets response header and
// trailer metadata, and changes its request to show whether it shares the
// caller's.
type metadataTokens struct {
	brokerv1.UnimplementedPartnerTokenServiceServer
}

func (metadataTokens) GetPartnerToken(ctx context.Context, req *brokerv1.GetPartnerTokenRequest) (*brokerv1.GetPartnerTokenResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", "3"))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("done", "yes"))
	if !inProcess(ctx) {
		return nil, status.Error(codes.FailedPrecondition, "not called in process")
	}
	token := metadata.ValueFromIncomingContext(ctx, "authorization")
	req.UserId = "changed by the service"
	return &brokerv1.GetPartnerTokenResponse{AccessToken: token[0]}, nil
}

func TestInprocConn(t *testing.T) {
	var intercepted []string
	conn := newInprocConn(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		intercepted = append(intercepted, info.FullMethod)
		return handler(ctx, req)
	})
	brokerv1.RegisterPartnerTokenServiceServer(conn, metadataTokens{})
	client := brokerv1.NewPartnerTokenServiceClient(conn)

	t.Run("Call", func(t *testing.T) {
		intercepted = nil
		ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer x")
		req := &brokerv1.GetPartnerTokenRequest{UserId: "u"}
		var header, trailer metadata.MD
		resp, err := client.GetPartnerToken(ctx, req, grpc.Header(&header), grpc.Trailer(&trailer))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := resp.GetAccessToken(), "Bearer x"; got != want {
			t.Errorf("the service saw authorization %q, want %q", got, want)
		}
		if got, want := req.GetUserId(), "u"; got != want {
			t.Errorf("the caller's request became %q, want it unchanged: the service must get a copy", got)
		}
		if got := header.Get("retry-after"); len(got) != 1 || got[0] != "3" {
			t.Errorf("header metadata %v, want retry-after 3", header)
		}
		if got := trailer.Get("done"); len(got) != 1 || got[0] != "yes" {
			t.Errorf("trailer metadata %v, want done yes", trailer)
		}
		if want := brokerv1.PartnerTokenService_GetPartnerToken_FullMethodName; len(intercepted) != 1 || intercepted[0] != want {
			t.Errorf("the interceptor saw %v, want one call of %s", intercepted, want)
		}
	})
	t.Run("UnknownMethod", func(t *testing.T) {
		_, err := brokerv1.NewLinkServiceClient(conn).GetLink(t.Context(), &brokerv1.GetLinkRequest{UserId: "u"})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("a method not registered: %v, want UNIMPLEMENTED", err)
		}
	})
	t.Run("Stream", func(t *testing.T) {
		if _, err := conn.NewStream(t.Context(), &grpc.StreamDesc{}, "/broker.v1.X/Y"); status.Code(err) != codes.Unimplemented {
			t.Errorf("NewStream: %v, want UNIMPLEMENTED", err)
		}
	})
}
