// Package awserr tells, for the broker's AWS clients (DynamoDB, KMS), an AWS
// service refusing a request for good from a failure that may pass, so that
// each store or sealer maps the first to EINTERNAL and the second to
// EUNAVAILABLE in the same way.
package awserr

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Refused reports whether err, an error of an AWS SDK client after its retries,
// is the service's answer that the request itself is wrong: a client fault such
// as ValidationException or AccessDeniedException. It reports false for the
// context ending, network failures, 5xx answers, throttling and the client-fault
// codes in transient, which the caller's service uses for failures that pass.
func Refused(err error, transient ...string) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		if code := resp.HTTPStatusCode(); code >= http.StatusInternalServerError || code == http.StatusTooManyRequests {
			return false
		}
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorFault() == smithy.FaultServer {
		return false
	}
	code := apiErr.ErrorCode()
	if _, throttled := retry.DefaultThrottleErrorCodes[code]; throttled {
		return false
	}
	for _, t := range transient {
		if code == t {
			return false
		}
	}
	return true
}
