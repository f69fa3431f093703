package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// startKMS starts a KMS simulator on a loopback port; it is closed when the
// test ends.
func startKMS(tb testing.TB, opts sim.KMSOptions) *sim.KMS {
	tb.Helper()
	k := sim.NewKMS(opts)
	if err := k.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := k.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return k
}

// kmsClient is the AWS SDK's KMS client pointed at the simulator, with made-up
// credentials (the simulator does not check signatures) and no retries, so that
// every injected failure shows.
func kmsClient(k *sim.KMS) *kms.Client {
	return kms.New(kms.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(k.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSIM", "sim-secret", ""),
		Retryer:      aws.NopRetryer{},
	})
}

func TestKMS_SDK(t *testing.T) {
	const keyA, keyB = "key-a", "key-b"
	k := startKMS(t, sim.KMSOptions{KeyIDs: []string{keyA, keyB}})
	c := kmsClient(k)
	ctx := t.Context()
	ec := map[string]string{"purpose": "test"}

	gen, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyA), KeySpec: kmstypes.DataKeySpecAes256, EncryptionContext: ec})
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if got, want := len(gen.Plaintext), 32; got != want {
		t.Fatalf("len(Plaintext) = %d, want %d", got, want)
	}
	if bytes.Contains(gen.CiphertextBlob, gen.Plaintext) {
		t.Fatal("the CiphertextBlob holds the data key in clear")
	}
	if got := aws.ToString(gen.KeyId); got != keyA {
		t.Errorf("KeyId = %q, want %q", got, keyA)
	}
	tampered := bytes.Clone(gen.CiphertextBlob)
	tampered[len(tampered)-1] ^= 1
	genB, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyB), NumberOfBytes: aws.Int32(16)})
	if err != nil {
		t.Fatalf("GenerateDataKey(NumberOfBytes): %v", err)
	}
	if got, want := len(genB.Plaintext), 16; got != want {
		t.Errorf("len(Plaintext) = %d, want %d", got, want)
	}

	t.Run("Decrypt", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			in    *kms.DecryptInput
			want  []byte
			error any // pointer to the SDK's error type, or nil
		}{
			{"WithKeyID", &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, KeyId: aws.String(keyA), EncryptionContext: ec}, gen.Plaintext, nil},
			{"WithoutKeyID", &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ec}, gen.Plaintext, nil},
			{"OtherKey", &kms.DecryptInput{CiphertextBlob: genB.CiphertextBlob}, genB.Plaintext, nil},
			{"IncorrectKey", &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, KeyId: aws.String(keyB), EncryptionContext: ec}, nil, new(*kmstypes.IncorrectKeyException)},
			{"Tampered", &kms.DecryptInput{CiphertextBlob: tampered, EncryptionContext: ec}, nil, new(*kmstypes.InvalidCiphertextException)},
			{"Truncated", &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob[:10], EncryptionContext: ec}, nil, new(*kmstypes.InvalidCiphertextException)},
			{"NoContext", &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob}, nil, new(*kmstypes.InvalidCiphertextException)},
			{"OtherContext", &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "other"}}, nil, new(*kmstypes.InvalidCiphertextException)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out, err := c.Decrypt(ctx, tc.in)
				if tc.error != nil {
					if err == nil || !errors.As(err, tc.error) {
						t.Fatalf("Decrypt error = %v, want %T", err, tc.error)
					}
					return
				}
				if err != nil {
					t.Fatalf("Decrypt: %v", err)
				}
				if !bytes.Equal(out.Plaintext, tc.want) {
					t.Error("Decrypt returned another data key")
				}
			})
		}
	})

	t.Run("GenerateDataKeyErrors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   *kms.GenerateDataKeyInput
			code string
		}{
			{"UnknownKey", &kms.GenerateDataKeyInput{KeyId: aws.String("no-such-key"), KeySpec: kmstypes.DataKeySpecAes256}, "NotFoundException"},
			{"NoSize", &kms.GenerateDataKeyInput{KeyId: aws.String(keyA)}, "ValidationException"},
			{"BothSizes", &kms.GenerateDataKeyInput{KeyId: aws.String(keyA), KeySpec: kmstypes.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)}, "ValidationException"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := c.GenerateDataKey(ctx, tc.in)
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
					t.Errorf("GenerateDataKey error = %v, want %s", err, tc.code)
				}
			})
		}
		var notFound *kmstypes.NotFoundException
		_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String("no-such-key"), KeySpec: kmstypes.DataKeySpecAes256})
		if !errors.As(err, &notFound) {
			t.Errorf("unknown key: error %v is not a *types.NotFoundException", err)
		}
	})

	t.Run("FailNext", func(t *testing.T) {
		for _, tc := range []struct {
			status int
			code   string
		}{
			{http.StatusServiceUnavailable, "KMSInternalException"},
			{http.StatusTooManyRequests, "ThrottlingException"},
		} {
			t.Run(tc.code, func(t *testing.T) {
				k.FailNext(1, tc.status)
				_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ec})
				if err == nil || !strings.Contains(err.Error(), tc.code) {
					t.Fatalf("Decrypt error = %v, want %s", err, tc.code)
				}
				if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ec}); err != nil {
					t.Errorf("after the fault: %v", err)
				}
			})
		}
	})

	t.Run("Stats", func(t *testing.T) {
		before := k.Stats()
		if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: gen.CiphertextBlob, EncryptionContext: ec}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(keyA), KeySpec: kmstypes.DataKeySpecAes256}); err != nil {
			t.Fatal(err)
		}
		after := k.Stats()
		if after.Decrypt-before.Decrypt != 1 || after.GenerateDataKey-before.GenerateDataKey != 1 || after.Requests-before.Requests != 2 {
			t.Errorf("Stats went from %+v to %+v, want one more of each", before, after)
		}
	})
}

func TestKMS_Protocol(t *testing.T) {
	k := startKMS(t, sim.KMSOptions{})
	for _, tc := range []struct {
		name, method, path, target, contentType, body string
		status                                        int
		errType                                       string
	}{
		{"UnknownOperation", "POST", "/", "TrentService.Encrypt", "application/x-amz-json-1.1", `{}`, 400, "UnknownOperationException"},
		{"WrongContentType", "POST", "/", "TrentService.Decrypt", "application/json", `{}`, 400, "SerializationException"},
		{"NotJSON", "POST", "/", "TrentService.GenerateDataKey", "application/x-amz-json-1.1", `{`, 400, "SerializationException"},
		{"UnknownKey", "POST", "/", "TrentService.GenerateDataKey", "application/x-amz-json-1.1", `{"KeyId":"nope","KeySpec":"AES_256"}`, 400, "NotFoundException"},
		{"NotBase64", "POST", "/", "TrentService.Decrypt", "application/x-amz-json-1.1", `{"CiphertextBlob":"!!"}`, 400, "SerializationException"},
		{"Get", "GET", "/", "TrentService.Decrypt", "application/x-amz-json-1.1", ``, 405, "UnsupportedOperationException"},
		{"OtherPath", "POST", "/x", "TrentService.Decrypt", "application/x-amz-json-1.1", `{}`, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, k.URL()+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Amz-Target", tc.target)
			req.Header.Set("Content-Type", tc.contentType)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got, want := resp.StatusCode, tc.status; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if tc.errType == "" {
				return
			}
			var body struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.Type != tc.errType || body.Message == "" {
				t.Errorf("answer = %+v, want __type %q and a message", body, tc.errType)
			}
		})
	}
}

func TestKMS_Start(t *testing.T) {
	t.Run("NotLoopback", func(t *testing.T) {
		k := sim.NewKMS(sim.KMSOptions{Addr: "0.0.0.0:0"})
		if err := k.Start(context.Background()); err == nil {
			k.Close()
			t.Fatal("Start on 0.0.0.0 succeeded")
		}
	})
	t.Run("Twice", func(t *testing.T) {
		k := startKMS(t, sim.KMSOptions{})
		if err := k.Start(context.Background()); err == nil {
			t.Fatal("second Start succeeded")
		}
		if !strings.HasPrefix(k.URL(), "http://127.0.0.1:") {
			t.Errorf("URL() = %q", k.URL())
		}
	})
	t.Run("KeyIDs", func(t *testing.T) {
		if got := sim.NewKMS(sim.KMSOptions{}).KeyIDs(); len(got) != 1 || got[0] != sim.DefaultKMSKeyID {
			t.Errorf("KeyIDs() = %q, want [%q]", got, sim.DefaultKMSKeyID)
		}
	})
}
