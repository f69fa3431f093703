package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
)

// TestReciprocal_RateLimit: with the default limits, a user who hands over
// made-up codes costs ten LWA exchanges a minute and no more; beyond them the
// form endpoint answers 429 temporarily_unavailable with Retry-After, and the
// gRPC face RESOURCE_EXHAUSTED with retry-after. Another user links as
// usual, and the user may try again once Retry-After has passed.
func TestReciprocal_RateLimit(t *testing.T) {
	h := newHarness(t)
	madeUp := func(i int) url.Values {
		return url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {"ANmade-up-" + strings.Repeat("x", i)}, "client_id": {alexaClient}}
	}
	attacker := "Bearer " + h.userToken("mallory")
	before := h.sims.LWA.Stats().Exchanges
	refused := 0
	for i := range 30 {
		status, body, header := h.authorize(madeUp(i), attacker)
		switch {
		case i < 10 && status != http.StatusBadRequest:
			t.Fatalf("made-up code %d: %d %s, want 400 invalid_grant within the limit", i, status, body)
		case i >= 10:
			if status != http.StatusTooManyRequests || !strings.Contains(body, `"error":"temporarily_unavailable"`) {
				t.Fatalf("made-up code %d: %d %s, want 429 temporarily_unavailable", i, status, body)
			}
			if got, want := header.Get("Retry-After"), "6"; got != want {
				t.Errorf("made-up code %d: Retry-After = %q, want %q", i, got, want)
			}
			refused++
		}
	}
	if got, want := h.sims.LWA.Stats().Exchanges-before, 10; got != want {
		t.Errorf("LWA exchanges for 30 made-up codes = %d, want %d (the limit)", got, want)
	}

	// The gRPC face is limited alike.
	var header metadata.MD
	_, err := brokerv1.NewReciprocalServiceClient(h.conn).Authorize(withBearer(t.Context(), h.userToken("mallory")),
		&brokerv1.AuthorizeRequest{GrantType: "reciprocal_authorization_code", Code: "ANmade-up-grpc", ClientId: alexaClient},
		grpc.Header(&header))
	if got, want := status.Code(err), codes.ResourceExhausted; got != want {
		t.Errorf("gRPC Authorize beyond the limit: %v, want %v", err, want)
	}
	if got := header.Get("retry-after"); len(got) != 1 || got[0] != "6" {
		t.Errorf("gRPC retry-after = %q, want [6]", got)
	}

	h.link("alice") // another user of the same client is not affected

	h.clock.Advance(6 * time.Second)
	if status, body, _ := h.authorize(madeUp(99), attacker); status != http.StatusBadRequest {
		t.Errorf("made-up code after Retry-After: %d %s, want 400 invalid_grant", status, body)
	}
}
