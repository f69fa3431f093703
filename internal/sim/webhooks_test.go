package sim_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// startWebhooks starts a receiver stopped by the test.
func startWebhooks(t *testing.T) *sim.Webhooks {
	t.Helper()
	h := sim.NewWebhooks(sim.WebhooksOptions{})
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// post sends a webhook of e signed with secret at ts.
func post(t *testing.T, h *sim.Webhooks, secret tokens.Secret, e tokens.Event, ts time.Time, timeout time.Duration) (*http.Response, error) {
	t.Helper()
	signer, err := events.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := events.MarshalEvent(e)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.URL(), strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	signer.Sign(req.Header, e.ID, ts, body)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func TestWebhooks(t *testing.T) {
	e := tokens.NewEvent(tokens.EventLinked, "parent-1", tokens.ActorAlexa, time.Now(), map[string]any{"region": "NA", "relinked": false})
	other := sim.NewWebhooks(sim.WebhooksOptions{}).Secret()
	for _, tc := range []struct {
		name     string
		setup    func(h *sim.Webhooks)
		secret   func(h *sim.Webhooks) tokens.Secret
		ts       time.Time
		status   int
		verified bool
		retry    string
	}{
		{"Verified", nil, nil, time.Now(), http.StatusNoContent, true, ""},
		{"WrongSecret", nil, func(*sim.Webhooks) tokens.Secret { return other }, time.Now(), http.StatusUnauthorized, false, ""},
		{"OldTimestamp", nil, nil, time.Now().Add(-6 * time.Minute), http.StatusUnauthorized, false, ""},
		{"Fail", func(h *sim.Webhooks) { h.FailNext(1, http.StatusBadGateway) }, nil, time.Now(), http.StatusBadGateway, true, ""},
		{"Throttle", func(h *sim.Webhooks) { h.ThrottleNext(1, 1500*time.Millisecond) }, nil, time.Now(), http.StatusTooManyRequests, true, "2"},
		{"Down", func(h *sim.Webhooks) { h.SetDown(true) }, nil, time.Now(), http.StatusServiceUnavailable, true, ""},
		{"Cleared", func(h *sim.Webhooks) { h.SetDown(true); h.FailNext(2, 500); h.ClearFaults() }, nil, time.Now(), http.StatusNoContent, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startWebhooks(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			secret := h.Secret()
			if tc.secret != nil {
				secret = tc.secret(h)
			}
			resp, err := post(t, h, secret, e, tc.ts, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.retry {
				t.Fatalf("answered %d Retry-After %q, want %d %q", resp.StatusCode, resp.Header.Get("Retry-After"), tc.status, tc.retry)
			}
			got := h.Received()
			if len(got) != 1 || got[0].Verified != tc.verified || got[0].Status != tc.status || got[0].ID != e.ID || got[0].Event.Type != "link.linked" {
				t.Fatalf("received %+v", got)
			}
			if n := len(h.Delivered()); (n == 1) != (tc.status == http.StatusNoContent) {
				t.Fatalf("%d delivered", n)
			}
		})
	}
	t.Run("Hang", func(t *testing.T) {
		h := startWebhooks(t)
		h.SetDelay(time.Hour)
		if _, err := post(t, h, h.Secret(), e, time.Now(), 100*time.Millisecond); err == nil {
			t.Fatal("a hanging receiver answered")
		}
		if got := h.Received(); len(got) != 1 || got[0].Status != 0 {
			t.Fatalf("received %+v", got)
		}
	})
	t.Run("Faults", func(t *testing.T) {
		h := startWebhooks(t)
		f := &sim.Faults{Webhooks: h}
		if _, err := f.Apply("webhook:5xx", 1); err != nil {
			t.Fatal(err)
		}
		if resp, err := post(t, h, h.Secret(), e, time.Now(), 5*time.Second); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("after webhook:5xx: %v %v", resp, err)
		}
	})
}
