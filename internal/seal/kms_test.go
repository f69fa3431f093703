package seal_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// staticAWS is an AWS configuration with made-up credentials, which the KMS
// simulator does not check, in region.
func staticAWS(region string) aws.Config {
	return aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider("AKIDSIM", "sim-secret", "")}
}

func TestNewKMSClient(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opts         seal.KMSOptions
		wantRegion   string
		wantEndpoint string
	}{
		{"Region", seal.KMSOptions{AWS: staticAWS("eu-west-1")}, "eu-west-1", ""},
		{"Endpoint", seal.KMSOptions{AWS: staticAWS("eu-west-1"), Endpoint: "http://127.0.0.1:4566"}, "eu-west-1", "http://127.0.0.1:4566"},
		{"EndpointWithoutRegion", seal.KMSOptions{AWS: staticAWS(""), Endpoint: "http://127.0.0.1:4566"}, "us-east-1", "http://127.0.0.1:4566"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := seal.NewKMSClient(t.Context(), tc.opts)
			if err != nil {
				t.Fatalf("NewKMSClient: %v", err)
			}
			o := c.Options()
			if got := o.Region; got != tc.wantRegion {
				t.Errorf("region = %q, want %q", got, tc.wantRegion)
			}
			if got := aws.ToString(o.BaseEndpoint); got != tc.wantEndpoint {
				t.Errorf("endpoint = %q, want %q", got, tc.wantEndpoint)
			}
			if got, want := o.Retryer.MaxAttempts(), seal.KMSMaxAttempts; got != want {
				t.Errorf("retryer's MaxAttempts = %d, want %d", got, want)
			}
		})
	}
	t.Run("NoRegion", func(t *testing.T) {
		_, err := seal.NewKMSClient(t.Context(), seal.KMSOptions{AWS: staticAWS("")})
		if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
			t.Fatalf("error %v has code %q, want %q", err, got, want)
		}
		if !strings.Contains(err.Error(), "AWS_REGION") {
			t.Errorf("error %q does not say to set AWS_REGION", err)
		}
	})
	t.Run("DefaultConfiguration", func(t *testing.T) {
		t.Setenv("AWS_REGION", "ap-southeast-2")
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSIM")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "sim-secret")
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
		c, err := seal.NewKMSClient(t.Context(), seal.KMSOptions{})
		if err != nil {
			t.Fatalf("NewKMSClient: %v", err)
		}
		if got, want := c.Options().Region, "ap-southeast-2"; got != want {
			t.Errorf("region = %q, want %q (from the environment)", got, want)
		}
	})
}

func TestOpenKMS(t *testing.T) {
	k := startKMS(t)
	opts := seal.KMSOptions{AWS: staticAWS("eu-west-1"), Endpoint: k.URL()}
	t.Run("OK", func(t *testing.T) {
		e, err := seal.OpenKMS(t.Context(), sim.DefaultKMSKeyID, opts)
		if err != nil {
			t.Fatalf("OpenKMS: %v", err)
		}
		if got, want := e.KMSKeyID(), sim.DefaultKMSKeyID; got != want {
			t.Errorf("KMSKeyID = %q, want %q", got, want)
		}
		sealed := mustEnvelopeSeal(t, e, "user-1", []byte("refresh token"))
		if got, err := e.Open("user-1", sealed); err != nil || string(got) != "refresh token" {
			t.Errorf("Open = %q, %v; want the plaintext", got, err)
		}
	})
	for _, tc := range []struct {
		name     string
		keyID    string
		opts     seal.KMSOptions
		code     tokens.Code
		namesKey bool // the error names keyID
	}{
		{"UnknownKey", "no-such-key", opts, tokens.EINTERNAL, true},
		{"NoKeyID", "", opts, tokens.EINVALID, false},
		{"NoRegion", sim.DefaultKMSKeyID, seal.KMSOptions{AWS: staticAWS("")}, tokens.EINVALID, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := seal.OpenKMS(t.Context(), tc.keyID, tc.opts)
			if got := tokens.ErrorCode(err); got != tc.code {
				t.Fatalf("error %v has code %q, want %q", err, got, tc.code)
			}
			if tc.namesKey && !strings.Contains(err.Error(), tc.keyID) {
				t.Errorf("error %q does not name the key %s", err, tc.keyID)
			}
		})
	}
}
