package server_test

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/reciprocal-broker/broker/internal/server"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestErrorTable checks every row of the broker's error table: each
// application error code becomes one gRPC code and one HTTP status, and keeps
// its message.
func TestErrorTable(t *testing.T) {
	for _, tt := range []struct {
		code tokens.Code
		grpc codes.Code
		http int
	}{
		{tokens.ENOTFOUND, codes.NotFound, http.StatusNotFound},
		{tokens.EINVALID, codes.InvalidArgument, http.StatusBadRequest},
		{tokens.EUNAUTHENTICATED, codes.Unauthenticated, http.StatusUnauthorized},
		{tokens.EPERMISSION, codes.PermissionDenied, http.StatusForbidden},
		{tokens.ERELINK, codes.FailedPrecondition, http.StatusPreconditionFailed},
		{tokens.ECONFLICT, codes.Aborted, http.StatusConflict},
		{tokens.EUNAVAILABLE, codes.Unavailable, http.StatusServiceUnavailable},
		{tokens.ERATELIMIT, codes.ResourceExhausted, http.StatusTooManyRequests},
		{tokens.EUNIMPLEMENTED, codes.Unimplemented, http.StatusNotImplemented},
		{tokens.EINTERNAL, codes.Internal, http.StatusInternalServerError},
	} {
		t.Run(string(tt.code), func(t *testing.T) {
			err := tokens.Errorf(tt.code, "what happened")
			s := server.GRPCStatus(err)
			if s.Code() != tt.grpc || s.Message() != "what happened" {
				t.Errorf("GRPCStatus = %v %q, want %v %q", s.Code(), s.Message(), tt.grpc, "what happened")
			}
			if got := server.HTTPStatus(err); got != tt.http {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.http)
			}
		})
	}
}
