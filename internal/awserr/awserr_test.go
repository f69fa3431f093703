package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/reciprocal-broker/broker/internal/awserr"
)

func apiErr(code string, fault smithy.ErrorFault) error {
	return &smithy.GenericAPIError{Code: code, Message: "m", Fault: fault}
}

func withStatus(status int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}}
}

func TestRefused(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"Validation", withStatus(400, apiErr("ValidationException", smithy.FaultClient)), true},
		{"AccessDenied", fmt.Errorf("op: %w", apiErr("AccessDeniedException", smithy.FaultClient)), true},
		{"Throttled", withStatus(400, apiErr("ThrottlingException", smithy.FaultClient)), false},
		{"TooManyRequests", withStatus(429, apiErr("Whatever", smithy.FaultClient)), false},
		{"ServerFault", apiErr("InternalServerError", smithy.FaultServer), false},
		{"Status500", withStatus(500, apiErr("Oops", smithy.FaultClient)), false},
		{"Transient", apiErr("ResourceNotFoundException", smithy.FaultClient), false},
		{"Canceled", fmt.Errorf("op: %w", context.Canceled), false},
		{"Network", errors.New("dial tcp: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := awserr.Refused(tt.err, "ResourceNotFoundException"); got != tt.want {
				t.Errorf("Refused = %v, want %v", got, tt.want)
			}
		})
	}
}
