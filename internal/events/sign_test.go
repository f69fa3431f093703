package events_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/events/eventstest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func secretOf(n int) tokens.Secret {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return tokens.Secret("whsec_" + base64.StdEncoding.EncodeToString(b))
}

func TestNewSigner(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret tokens.Secret
		ok     bool
	}{
		{"24Bytes", secretOf(24), true},
		{"64Bytes", secretOf(64), true},
		{"Empty", "", false},
		{"23Bytes", secretOf(23), false},
		{"65Bytes", secretOf(65), false},
		{"NoPrefix", tokens.Secret(strings.TrimPrefix(secretOf(32).Reveal(), "whsec_")), false},
		{"NotBase64", "whsec_not*base64*at*all*not*base64*at*all", false},
		{"URLBase64", "whsec_" + tokens.Secret(base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 32)))), false},
		{"Unpadded", "whsec_" + tokens.Secret(base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("k", 31)))), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.NewSigner(tc.secret)
			if (err == nil) != tc.ok {
				t.Fatalf("NewSigner = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, events.ErrBadSecret) {
				t.Fatalf("NewSigner = %v, want ErrBadSecret", err)
			}
		})
	}
}

// TestSigner_PublishedVector signs the example of the Standard Webhooks
// libraries' own tests.
func TestSigner_PublishedVector(t *testing.T) {
	s, err := events.NewSigner("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Signature("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Signature = %q, want %q", got, want)
	}
}

// TestSigner_StandardWebhooks has the standardwebhooks npm package verify
// webhooks the Signer signed, under secrets of every allowed length.
func TestSigner_StandardWebhooks(t *testing.T) {
	now := time.Now()
	type vector struct {
		name   string
		secret tokens.Secret
		hook   eventstest.Webhook
		ok     bool
	}
	var vectors []vector
	for _, n := range []int{24, 32, 48, 64} {
		secret := secretOf(n)
		s, err := events.NewSigner(secret)
		if err != nil {
			t.Fatal(err)
		}
		e := tokens.NewEvent(tokens.EventLinked, "parent-ü \"<&>\"", "alexa", now, map[string]any{"region": "NA", "relinked": true})
		body, err := events.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		s.Sign(h, e.ID, now, body)
		hook := eventstest.Webhook{ID: h.Get(events.HeaderID), Timestamp: h.Get(events.HeaderTimestamp), Signature: h.Get(events.HeaderSignature), Body: body}
		name := strconv.Itoa(n) + "Bytes"
		vectors = append(vectors, vector{name, secret, hook, true})
		tampered := hook
		tampered.Body = []byte(strings.Replace(string(body), "true", "false", 1))
		vectors = append(vectors, vector{name + "Tampered", secret, tampered, false})
		other := hook
		other.ID += "X"
		vectors = append(vectors, vector{name + "OtherID", secret, other, false})
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			r := eventstest.Verify(t, v.secret, []eventstest.Webhook{v.hook})[0]
			if r.OK != v.ok {
				t.Fatalf("the library's verify: ok %v (%s), want %v", r.OK, r.Error, v.ok)
			}
			if v.ok && r.Signature != v.hook.Signature {
				t.Fatalf("the library signs %q, the broker %q", r.Signature, v.hook.Signature)
			}
		})
	}
}
