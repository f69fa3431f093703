package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// outcome is what one application error code becomes at the edge.
type outcome struct {
	grpc codes.Code
	http int
}

// outcomes is the broker's error table: it turns the domain's error codes into
// gRPC codes and HTTP statuses, for gRPC callers and the gateway's HTTP callers
// alike.
//
// Alexa's form endpoint, POST /api/reciprocal/authorize, is the one deliberate
// exception. Alexa calls it as an OAuth 2.0 token endpoint and reads RFC 6749
// §5.2 errors ({"error":"invalid_grant","error_description":"…"}), not the
// gateway's gRPC status JSON ({"code":N,"message":"…"}), so internal/reciprocal
// keeps a second, small table that turns the same error codes into OAuth error
// codes and HTTP statuses (its oauthError). The gRPC face of the hand-over,
// ReciprocalService/Authorize, answers through this table like every other
// method.
var outcomes = map[tokens.Code]outcome{
	tokens.ENOTFOUND:        {codes.NotFound, http.StatusNotFound},
	tokens.EINVALID:         {codes.InvalidArgument, http.StatusBadRequest},
	tokens.EUNAUTHENTICATED: {codes.Unauthenticated, http.StatusUnauthorized},
	tokens.EPERMISSION:      {codes.PermissionDenied, http.StatusForbidden},
	tokens.ERELINK:          {codes.FailedPrecondition, http.StatusPreconditionFailed},
	tokens.ECONFLICT:        {codes.Aborted, http.StatusConflict},
	tokens.EUNAVAILABLE:     {codes.Unavailable, http.StatusServiceUnavailable},
	tokens.ERATELIMIT:       {codes.ResourceExhausted, http.StatusTooManyRequests},
	tokens.EUNIMPLEMENTED:   {codes.Unimplemented, http.StatusNotImplemented},
	tokens.EINTERNAL:        {codes.Internal, http.StatusInternalServerError},
}

// httpStatuses maps gRPC codes back to HTTP statuses for the gateway, derived
// from outcomes so the two can never disagree. It adds the codes of calls cut
// short: CANCELLED is 499 (the client closed the request) and
// DEADLINE_EXCEEDED 504.
var httpStatuses = func() map[codes.Code]int {
	m := map[codes.Code]int{codes.OK: http.StatusOK, codes.Canceled: 499, codes.DeadlineExceeded: http.StatusGatewayTimeout}
	for _, o := range outcomes {
		m[o.grpc] = o.http
	}
	return m
}()

// GRPCStatus turns any error into a gRPC status: nil is OK; a gRPC status error
// is kept as it is; context.DeadlineExceeded and context.Canceled become
// DEADLINE_EXCEEDED and CANCELLED; an application error (*tokens.Error) gets the
// gRPC code of its Code and keeps its message; anything else becomes INTERNAL
// with a generic message, so that internals never reach the caller.
func GRPCStatus(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	if s, ok := status.FromError(err); ok {
		return s
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "canceled")
	}
	o, ok := outcomes[tokens.ErrorCode(err)]
	if !ok {
		o = outcomes[tokens.EINTERNAL]
	}
	return status.New(o.grpc, tokens.ErrorMessage(err))
}

// HTTPStatus returns the HTTP status of an error, through the same table: the
// status of GRPCStatus(err)'s code, and 500 for a code the table lacks.
func HTTPStatus(err error) int {
	if s, ok := httpStatuses[GRPCStatus(err).Code()]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// callError converts the application error err of a call of method into a
// gRPC status error, and logs internal errors (which callers never see in
// detail). It returns nil for nil.
func callError(ctx context.Context, logger *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	s := GRPCStatus(err)
	if s.Code() == codes.Internal {
		logger.ErrorContext(ctx, "internal error", "method", method, "err", err.Error())
	}
	return s.Err()
}
