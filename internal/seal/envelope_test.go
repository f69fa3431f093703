package seal_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// startKMS starts a KMS simulator holding sim.DefaultKMSKeyID; it is closed
// when the test ends.
func startKMS(tb testing.TB) *sim.KMS {
	tb.Helper()
	k := sim.NewKMS(sim.KMSOptions{})
	if err := k.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { k.Close() })
	return k
}

// recordingKMS is the SDK's client pointed at a simulator, recording every data
// key KMS returned and the slices it returned them in, so that tests can look
// for key bytes in errors and check that the Envelope cleared the slices.
type recordingKMS struct {
	*kms.Client

	mu     sync.Mutex
	keys   [][]byte // copies of the data keys
	slices [][]byte // the slices the Envelope received
}

var _ seal.KMS = (*recordingKMS)(nil)

func (r *recordingKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	out, err := r.Client.GenerateDataKey(ctx, in, optFns...)
	if err == nil {
		r.record(out.Plaintext)
	}
	return out, err
}

func (r *recordingKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	out, err := r.Client.Decrypt(ctx, in, optFns...)
	if err == nil {
		r.record(out.Plaintext)
	}
	return out, err
}

func (r *recordingKMS) record(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, bytes.Clone(b))
	r.slices = append(r.slices, b)
}

// forbidden returns every form of every data key seen so far.
func (r *recordingKMS) forbidden() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, k := range r.keys {
		out = append(out, keyForms(k)...)
	}
	return out
}

// newKMSClient returns a recording client of the simulator at url: the SDK's
// standard retryer, three attempts, short backoff, no retry quota.
func newKMSClient(url string) *recordingKMS {
	return &recordingKMS{Client: kms.New(kms.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSIM", "sim-secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.MaxBackoff = 5 * time.Millisecond
			o.RateLimiter = ratelimit.None
		}),
	})}
}

// mustEnvelope returns a new Envelope ("instance") on the simulator's default key.
func mustEnvelope(tb testing.TB, client seal.KMS, older ...seal.Key) *seal.Envelope {
	tb.Helper()
	e, err := seal.NewEnvelope(context.Background(), client, sim.DefaultKMSKeyID, older...)
	if err != nil {
		tb.Fatalf("NewEnvelope: %v", err)
	}
	return e
}

// mustEnvelopeSeal seals plaintext for userID with e.
func mustEnvelopeSeal(tb testing.TB, e *seal.Envelope, userID string, plaintext []byte) tokens.Sealed {
	tb.Helper()
	sealed, err := e.Seal(userID, plaintext)
	if err != nil {
		tb.Fatalf("Seal: %v", err)
	}
	return sealed
}

func TestNewEnvelope(t *testing.T) {
	k := startKMS(t)
	client := newKMSClient(k.URL())

	t.Run("OK", func(t *testing.T) {
		before := k.Stats().GenerateDataKey
		e := mustEnvelope(t, client)
		if got := k.Stats().GenerateDataKey - before; got != 1 {
			t.Errorf("GenerateDataKey calls = %d, want 1", got)
		}
		if !strings.HasPrefix(e.KeyID(), seal.EnvelopeKeyPrefix) || e.KMSKeyID() != sim.DefaultKMSKeyID {
			t.Errorf("KeyID() = %q, KMSKeyID() = %q", e.KeyID(), e.KMSKeyID())
		}
		if other := mustEnvelope(t, client); other.KeyID() == e.KeyID() {
			t.Error("two Envelopes share a data key")
		}
	})
	t.Run("ClearsDataKey", func(t *testing.T) {
		mustEnvelope(t, client)
		client.mu.Lock()
		last := client.slices[len(client.slices)-1]
		client.mu.Unlock()
		if len(last) != seal.KeySize || !bytes.Equal(last, make([]byte, seal.KeySize)) {
			t.Errorf("the data key KMS returned was not cleared (%d bytes)", len(last))
		}
	})

	for _, tc := range []struct {
		name   string
		client seal.KMS
		keyID  string
		older  []seal.Key
		fault  int
		code   tokens.Code
	}{
		{"NoClient", nil, sim.DefaultKMSKeyID, nil, 0, tokens.EINVALID},
		{"NoKeyID", client, "", nil, 0, tokens.EINVALID},
		{"ZeroOlderKey", client, sim.DefaultKMSKeyID, []seal.Key{mustKey(t, 0), {}}, 0, tokens.EINVALID},
		{"UnknownKMSKey", client, "no-such-key", nil, 0, tokens.EINTERNAL},
		{"KMSFailing", client, sim.DefaultKMSKeyID, nil, 3, tokens.EUNAVAILABLE},
		{"KMSThrottling", client, sim.DefaultKMSKeyID, nil, 3, tokens.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault > 0 {
				status := 503
				if tc.name == "KMSThrottling" {
					status = 429
				}
				k.FailNext(tc.fault, status)
				t.Cleanup(k.ClearFaults)
			}
			e, err := seal.NewEnvelope(context.Background(), tc.client, tc.keyID, tc.older...)
			if got, want := tokens.ErrorCode(err), tc.code; got != want {
				t.Fatalf("NewEnvelope error = %v, want code %q", err, want)
			}
			if e != nil {
				t.Error("NewEnvelope returned an Envelope with its error")
			}
		})
	}
	t.Run("RetriesTransientFailure", func(t *testing.T) {
		k.FailNext(2, 503)
		t.Cleanup(k.ClearFaults)
		mustEnvelope(t, client)
	})
	t.Run("KMSDown", func(t *testing.T) {
		down := startKMS(t)
		url := down.URL()
		down.Close()
		_, err := seal.NewEnvelope(context.Background(), newKMSClient(url), sim.DefaultKMSKeyID)
		if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
			t.Errorf("NewEnvelope error = %v, want code %q", err, want)
		}
	})
}

func TestEnvelope_Open(t *testing.T) {
	k := startKMS(t)
	client := newKMSClient(k.URL())
	static := mustKey(t, 7)
	a := mustEnvelope(t, client, static) // instance A, migrating from a static key
	b := mustEnvelope(t, client)         // instance B
	const user = "amzn1.account.USER-ONE"
	plaintext := []byte(`{"access_token":"Atza|secret-access","refresh_token":"Atzr|secret-refresh"}`)
	sealed := mustEnvelopeSeal(t, a, user, plaintext)
	sealedStatic := mustSeal(t, mustSealer(t, static), user, plaintext)

	// with returns a copy of sealed changed by f.
	with := func(f func(*tokens.Sealed)) tokens.Sealed {
		c := tokens.Sealed{KeyID: sealed.KeyID, Ciphertext: bytes.Clone(sealed.Ciphertext)}
		f(&c)
		return c
	}
	// tamperBlob flips one bit of the wrapped data key in the KeyID.
	tamperBlob := func(c *tokens.Sealed) {
		blob64, arn, _ := strings.Cut(strings.TrimPrefix(c.KeyID, seal.EnvelopeKeyPrefix), ":")
		blob, err := base64.RawURLEncoding.DecodeString(blob64)
		if err != nil {
			t.Fatal(err)
		}
		blob[len(blob)-1] ^= 1
		c.KeyID = seal.EnvelopeKeyPrefix + base64.RawURLEncoding.EncodeToString(blob) + ":" + arn
	}

	t.Run("Layout", func(t *testing.T) {
		if !strings.HasPrefix(sealed.KeyID, seal.EnvelopeKeyPrefix) || sealed.KeyID != a.KeyID() {
			t.Errorf("KeyID = %q, want %q", sealed.KeyID, a.KeyID())
		}
		if got, want := len(sealed.Ciphertext), 1+12+len(plaintext)+16; got != want {
			t.Errorf("len(Ciphertext) = %d, want %d (the format of Sealer)", got, want)
		}
		assertNotContains(t, "ciphertext", string(sealed.Ciphertext), "Atza|", "Atzr|", "secret")
	})

	for _, tc := range []struct {
		name     string
		envelope *seal.Envelope
		user     string
		sealed   tokens.Sealed
		code     tokens.Code // "" when it opens
	}{
		{"RoundTrip", a, user, sealed, ""},
		{"OtherInstance", b, user, sealed, ""},
		{"OlderStaticKey", a, user, sealedStatic, ""},
		{"StaticKeyNotGiven", b, user, sealedStatic, tokens.EINTERNAL},
		{"AnotherUser", b, "amzn1.account.USER-TWO", sealed, tokens.EINTERNAL},
		{"NoUser", a, "", sealed, tokens.EINTERNAL},
		{"FlippedBody", b, user, with(func(c *tokens.Sealed) { c.Ciphertext[20] ^= 1 }), tokens.EINTERNAL},
		{"Truncated", b, user, with(func(c *tokens.Sealed) { c.Ciphertext = c.Ciphertext[:5] }), tokens.EINTERNAL},
		{"TamperedBlob", b, user, with(tamperBlob), tokens.EINTERNAL},
		{"TamperedBlobOwnInstance", a, user, with(tamperBlob), tokens.EINTERNAL},
		{"BlobNotBase64", b, user, with(func(c *tokens.Sealed) { c.KeyID = seal.EnvelopeKeyPrefix + "!!:" + sim.DefaultKMSKeyID }), tokens.EINTERNAL},
		{"OtherKMSKey", b, user, with(func(c *tokens.Sealed) { c.KeyID = strings.Replace(c.KeyID, sim.DefaultKMSKeyID, "other-key", 1) }), tokens.EINTERNAL},
		{"EmptyBlob", b, user, with(func(c *tokens.Sealed) { c.KeyID = seal.EnvelopeKeyPrefix }), tokens.EINTERNAL},
		{"OtherInstanceBlob", b, user, with(func(c *tokens.Sealed) { c.KeyID = b.KeyID() }), tokens.EINTERNAL},
		{"UnknownKeyID", a, user, with(func(c *tokens.Sealed) { c.KeyID = "0000000000000000" }), tokens.EINTERNAL},
		{"ZeroEnvelope", new(seal.Envelope), user, sealed, tokens.EINTERNAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.envelope.Open(tc.user, tc.sealed)
			if code := tokens.ErrorCode(err); code != tc.code {
				t.Fatalf("Open error = %v, want code %q", err, tc.code)
			}
			if tc.code == "" {
				if !bytes.Equal(got, plaintext) {
					t.Errorf("Open = %q, want %q", got, plaintext)
				}
				return
			}
			if got != nil {
				t.Errorf("Open returned %q with its error", got)
			}
			forbidden := append(client.forbidden(), string(plaintext), "Atzr|", "USER-")
			assertNotContains(t, "error", err.Error(), forbidden...)
		})
	}

	t.Run("ZeroEnvelopeSeal", func(t *testing.T) {
		_, err := new(seal.Envelope).Seal(user, plaintext)
		if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
			t.Errorf("Seal error code = %q, want %q", got, want)
		}
	})
	t.Run("SealNoUser", func(t *testing.T) {
		_, err := a.Seal("", plaintext)
		if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
			t.Errorf("Seal error code = %q, want %q", got, want)
		}
	})
}

func TestEnvelope_Cache(t *testing.T) {
	k := startKMS(t)
	client := newKMSClient(k.URL())
	a, b := mustEnvelope(t, client), mustEnvelope(t, client)
	decrypts := func() int { return k.Stats().Decrypt }

	t.Run("OnePerForeignDataKey", func(t *testing.T) {
		before := decrypts()
		for i := range 5 {
			user := fmt.Sprintf("user-%d", i)
			p := fmt.Appendf(nil, "token-%d", i)
			for _, pair := range [][2]*seal.Envelope{{a, b}, {b, a}, {a, a}, {b, b}} {
				got, err := pair[1].Open(user, mustEnvelopeSeal(t, pair[0], user, p))
				if err != nil || !bytes.Equal(got, p) {
					t.Fatalf("Open = %q, %v", got, err)
				}
			}
		}
		if got := decrypts() - before; got != 2 {
			t.Errorf("Decrypt calls = %d, want 2 (one per foreign data key)", got)
		}
	})

	t.Run("ClearsUnwrappedKey", func(t *testing.T) {
		client.mu.Lock()
		defer client.mu.Unlock()
		for i, s := range client.slices {
			if !bytes.Equal(s, make([]byte, len(s))) {
				t.Errorf("data key %d was not cleared", i)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		c := mustEnvelope(t, client)
		sealed := mustEnvelopeSeal(t, a, "u", []byte("x"))
		before := decrypts()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if got, err := c.Open("u", sealed); err != nil || string(got) != "x" {
					t.Errorf("Open = %q, %v", got, err)
				}
			})
		}
		wg.Wait()
		if got := decrypts() - before; got != 1 {
			t.Errorf("Decrypt calls = %d, want 1 for 16 concurrent opens", got)
		}
	})

	t.Run("Bounded", func(t *testing.T) {
		reader := mustEnvelope(t, client)
		var first tokens.Sealed
		for i := range seal.EnvelopeCacheSize + 1 {
			sealed := mustEnvelopeSeal(t, mustEnvelope(t, client), "u", []byte("x"))
			if i == 0 {
				first = sealed
			}
			if _, err := reader.Open("u", sealed); err != nil {
				t.Fatal(err)
			}
		}
		before := decrypts()
		if _, err := reader.Open("u", first); err != nil {
			t.Fatal(err)
		}
		if got := decrypts() - before; got != 1 {
			t.Errorf("Decrypt calls = %d, want 1: the oldest data key should have been evicted", got)
		}
	})

	t.Run("KMSDown", func(t *testing.T) {
		c := mustEnvelope(t, client)
		known := mustEnvelopeSeal(t, a, "u", []byte("x"))
		if _, err := c.Open("u", known); err != nil { // cached from now on
			t.Fatal(err)
		}
		unknown := mustEnvelopeSeal(t, b, "u", []byte("y"))
		k.FailNext(100, 503)
		t.Cleanup(k.ClearFaults)
		_, err := c.Open("u", unknown)
		if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
			t.Errorf("Open with KMS failing: error = %v, want code %q", err, want)
		}
		assertNotContains(t, "error", err.Error(), client.forbidden()...)
		if got, err := c.Open("u", known); err != nil || string(got) != "x" {
			t.Errorf("Open of a cached data key with KMS failing = %q, %v", got, err)
		}
		if got, err := c.Open("u", mustEnvelopeSeal(t, c, "u", []byte("z"))); err != nil || string(got) != "z" {
			t.Errorf("Open of the own data key with KMS failing = %q, %v", got, err)
		}
		k.ClearFaults()
		if got, err := c.Open("u", unknown); err != nil || string(got) != "y" {
			t.Errorf("Open after KMS recovered = %q, %v", got, err)
		}
	})

	t.Run("KMSUnreachable", func(t *testing.T) {
		other := startKMS(t)
		oc := newKMSClient(other.URL())
		writer, reader := mustEnvelope(t, oc), mustEnvelope(t, oc)
		sealed := mustEnvelopeSeal(t, writer, "u", []byte("x"))
		other.Close()
		_, err := reader.Open("u", sealed)
		if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
			t.Errorf("Open with KMS unreachable: error = %v, want code %q", err, want)
		}
	})
}

func TestEnvelope_Redacted(t *testing.T) {
	k := startKMS(t)
	client := newKMSClient(k.URL())
	a, b := mustEnvelope(t, client), mustEnvelope(t, client)
	if _, err := b.Open("u", mustEnvelopeSeal(t, a, "u", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	forbidden := client.forbidden()
	if len(forbidden) == 0 {
		t.Fatal("no data key recorded; the test would prove nothing")
	}
	type holder struct {
		Envelope *seal.Envelope
		hidden   *seal.Envelope
	}
	for _, format := range []string{"%v %+v %s", "%#v", "%d", "%x", "%q"} {
		for name, arg := range map[string]any{"Envelope": b, "Holder": holder{b, b}, "HolderPointer": &holder{b, b}} {
			assertNotContains(t, name+" as "+format, fmt.Sprintf(format, arg), forbidden...)
		}
	}
}
