package server

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
)

// TestGatewayJSON_PartnerToken: the partner-token answer written by hand is
// the JSON document protojson writes with the gateway's options, read back by
// encoding/json, and protojson reads it back to the same message; what it
// does not write (strings JSON escapes, times protojson refuses) protojson
// writes, or refuses.
func TestGatewayJSON_PartnerToken(t *testing.T) {
	at := func(sec, nsec int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(sec, nsec)) }
	for _, tt := range []struct {
		name    string
		r       *brokerv1.GetPartnerTokenResponse
		byHand  bool // appendPartnerToken writes it
		refused bool // protojson refuses it
	}{
		{"Empty", &brokerv1.GetPartnerTokenResponse{}, true, false},
		{"Full", &brokerv1.GetPartnerTokenResponse{AccessToken: "Atza|IwEB" + strings.Repeat("a-Z_9.~+/=", 30), TokenType: "bearer", ExpiresAt: at(1_800_000_000, 0), ExpiresIn: 3600}, true, false},
		{"Millis", &brokerv1.GetPartnerTokenResponse{AccessToken: "t", ExpiresAt: at(1_800_000_000, 500_000_000)}, true, false},
		{"Micros", &brokerv1.GetPartnerTokenResponse{AccessToken: "t", ExpiresAt: at(1_800_000_000, 123_456_000)}, true, false},
		{"Nanos", &brokerv1.GetPartnerTokenResponse{AccessToken: "t", ExpiresAt: at(1_800_000_000, 1)}, true, false},
		{"ZeroSecondsAndNanos", &brokerv1.GetPartnerTokenResponse{ExpiresAt: at(0, 0)}, true, false},
		{"FirstYear", &brokerv1.GetPartnerTokenResponse{ExpiresAt: &timestamppb.Timestamp{Seconds: -62135596800}}, true, false},
		{"LastSecond", &brokerv1.GetPartnerTokenResponse{ExpiresAt: &timestamppb.Timestamp{Seconds: 253402300799, Nanos: 999_999_999}}, true, false},
		{"NegativeExpiresIn", &brokerv1.GetPartnerTokenResponse{ExpiresIn: -5}, true, false},
		{"LargestExpiresIn", &brokerv1.GetPartnerTokenResponse{ExpiresIn: math.MaxInt32}, true, false},
		{"Quote", &brokerv1.GetPartnerTokenResponse{AccessToken: `a"b`}, false, false},
		{"Backslash", &brokerv1.GetPartnerTokenResponse{TokenType: `a\b`}, false, false},
		{"Control", &brokerv1.GetPartnerTokenResponse{AccessToken: "a\nb\x7f"}, false, false},
		{"Unicode", &brokerv1.GetPartnerTokenResponse{AccessToken: "jeton-été\u2028"}, false, false},
		{"HTMLCharacters", &brokerv1.GetPartnerTokenResponse{AccessToken: "<a&b>"}, true, false},
		{"InvalidUTF8", &brokerv1.GetPartnerTokenResponse{AccessToken: "a\xffb"}, false, true},
		{"YearTenThousand", &brokerv1.GetPartnerTokenResponse{ExpiresAt: &timestamppb.Timestamp{Seconds: 253402300800}}, false, true},
		{"NegativeNanos", &brokerv1.GetPartnerTokenResponse{ExpiresAt: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := newGatewayJSON()
			if _, byHand := appendPartnerToken(nil, tt.r); byHand != tt.byHand {
				t.Errorf("appendPartnerToken wrote it: %v, want %v", byHand, tt.byHand)
			}
			want, wantErr := j.MarshalOptions.Marshal(tt.r)
			got, err := j.Marshal(tt.r)
			if tt.refused {
				if err == nil || wantErr == nil {
					t.Fatalf("Marshal = %s, %v; protojson: %v; want both refused", got, err, wantErr)
				}
				return
			}
			if err != nil || wantErr != nil {
				t.Fatalf("Marshal error = %v, protojson's %v", err, wantErr)
			}
			var gotDoc, wantDoc any
			if err := json.Unmarshal(got, &gotDoc); err != nil {
				t.Fatalf("Marshal wrote %s, not JSON: %v", got, err)
			}
			if err := json.Unmarshal(want, &wantDoc); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantDoc, gotDoc); diff != "" {
				t.Errorf("Marshal wrote %s; protojson %s (-protojson +Marshal):\n%s", got, want, diff)
			}
			var back brokerv1.GetPartnerTokenResponse
			if err := j.UnmarshalOptions.Unmarshal(got, &back); err != nil || !proto.Equal(&back, tt.r) {
				t.Errorf("protojson read %s back as %v (%v), want %v", got, &back, err, tt.r)
			}
		})
	}
}

// TestGatewayJSON_Decode: a body is one message's JSON, white space around
// it; an empty one is io.EOF, which the gateway reads as an empty message.
func TestGatewayJSON_Decode(t *testing.T) {
	for _, tt := range []struct {
		name    string
		body    string
		want    *brokerv1.GetPartnerTokenRequest
		wantEOF bool
	}{
		{"Message", `{"user_id":"u1","skill_id":"s1"}`, &brokerv1.GetPartnerTokenRequest{UserId: "u1", SkillId: "s1"}, false},
		{"JSONName", ` {"userId":"u1"}` + "\n", &brokerv1.GetPartnerTokenRequest{UserId: "u1"}, false},
		{"Empty", "", nil, true},
		{"WhiteSpace", " \n\t", nil, true},
		{"UnknownField", `{"user_id":"u1","scope":"x"}`, nil, false},
		{"TwoValues", `{"user_id":"u1"}{"user_id":"u2"}`, nil, false},
		{"Trailing", `{"user_id":"u1"} x`, nil, false},
		{"NotJSON", `user_id=u1`, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got brokerv1.GetPartnerTokenRequest
			err := newGatewayJSON().NewDecoder(strings.NewReader(tt.body)).Decode(&got)
			switch {
			case tt.wantEOF:
				if !errors.Is(err, io.EOF) {
					t.Errorf("Decode = %v, want io.EOF", err)
				}
			case tt.want == nil:
				if err == nil || errors.Is(err, io.EOF) {
					t.Errorf("Decode = %v (%v), want an error", err, &got)
				}
			case err != nil || !cmp.Equal(&got, tt.want, protocmp.Transform()):
				t.Errorf("Decode = %v, %v; want %v", &got, err, tt.want)
			}
		})
	}
}

// TestGatewayJSON_NotAMessage: values that are not messages are JSONPb's.
func TestGatewayJSON_NotAMessage(t *testing.T) {
	j := newGatewayJSON()
	b, err := j.Marshal(map[string]int{"a": 1})
	if err != nil || string(b) != `{"a":1}` {
		t.Errorf("Marshal(map) = %s, %v; want {\"a\":1}", b, err)
	}
	var s string
	if err := j.NewDecoder(strings.NewReader(`"x"`)).Decode(&s); err != nil || s != "x" {
		t.Errorf("Decode(string) = %q, %v; want x", s, err)
	}
}
