package seal

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Settings of the KMS client that NewKMSClient builds: the SDK's standard
// retryer (exponential backoff with jitter; throttling, 5xx answers and
// connection errors retried) with at most KMSMaxAttempts attempts per call,
// waiting at most KMSMaxBackoff between two.
const (
	KMSMaxAttempts = 4
	KMSMaxBackoff  = time.Second
)

// EnvelopeStartTimeout bounds the KMS GenerateDataKey call that OpenKMS makes,
// retries included.
const EnvelopeStartTimeout = 20 * time.Second

// KMSOptions configure NewKMSClient and OpenKMS.
type KMSOptions struct {
	// Endpoint, when set, replaces the KMS endpoint of the region, such as
	// "http://127.0.0.1:4566" for a local server or the KMS simulator.
	Endpoint string
	// AWS is the AWS configuration to build the client from (region,
	// credentials, HTTP client). When its Credentials are nil, the default
	// configuration is loaded instead (environment, shared files, instance
	// role). Its Retryer is always replaced (see KMSMaxAttempts).
	AWS aws.Config
}

// NewKMSClient returns an AWS KMS client built from opts, pointed at
// opts.Endpoint when it is set. It makes no request. A local endpoint needs no
// region; the client then signs for us-east-1, which local servers ignore.
//
// It returns an EINVALID error when no AWS region is configured and
// opts.Endpoint is empty, and an EINTERNAL error when the default AWS
// configuration cannot be loaded.
func NewKMSClient(ctx context.Context, opts KMSOptions) (*kms.Client, error) {
	cfg := opts.AWS
	if cfg.Credentials == nil {
		loaded, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("seal: KMS: load AWS configuration: %w", err)
		}
		cfg = loaded
	}
	if cfg.Region == "" {
		if opts.Endpoint == "" {
			return nil, tokens.Errorf(tokens.EINVALID, "seal: no AWS region configured for KMS (set AWS_REGION)")
		}
		cfg.Region = "us-east-1" // local servers ignore it, but requests must be signed for one
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = KMSMaxAttempts
			so.MaxBackoff = KMSMaxBackoff
		})
	}), nil
}

// OpenKMS returns an Envelope on the KMS key keyID through a client that
// NewKMSClient builds from opts. The Envelope asks KMS for its data key now,
// within EnvelopeStartTimeout, so that a missing key, missing permissions or an
// unreachable KMS show at once rather than at the first seal.
//
// It returns the errors of NewKMSClient, and those of NewEnvelope naming keyID:
// EINVALID for an empty keyID, EUNAVAILABLE when KMS cannot be reached or
// throttles beyond the retries, EINTERNAL when KMS refuses the request.
func OpenKMS(ctx context.Context, keyID string, opts KMSOptions) (*Envelope, error) {
	client, err := NewKMSClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, EnvelopeStartTimeout)
	defer cancel()
	e, err := NewEnvelope(ctx, client, keyID)
	if err != nil {
		return nil, fmt.Errorf("seal: KMS key %s: %w", keyID, err)
	}
	return e, nil
}
