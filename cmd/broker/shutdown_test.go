package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// pollUntil polls cond every few milliseconds until it holds, and fails the
// test after 10 s.
func pollUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestShutdown_RefreshInFlight stops the broker while LWA has rotated a user's
// refresh token and its answer is still on the way, after the caller that
// asked for the refresh has gone: shutdown waits for the answer and stores it,
// so the next broker on the same store refreshes with the rotated token.
func TestShutdown_RefreshInFlight(t *testing.T) {
	h := newHarness(t)
	h.link("alice")
	admin := h.clientToken("broker:admin")
	release := h.sims.LWA.HoldAnswers()
	t.Cleanup(release)

	// The operator asks for a refresh and gives up once LWA has rotated.
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, "POST", h.base+"/v1/links/alice:refresh", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pollUntil(t, "LWA to rotate alice's refresh token", func() bool { return h.sims.LWA.Held() == 1 })
	if got := h.sims.LWA.Stats().RefreshesOK; got != 1 {
		t.Fatalf("LWA refreshes = %d, want 1 (rotated)", got)
	}
	cancel()
	<-gone

	// SIGTERM: the broker drains while LWA's answer is still held back.
	closed := make(chan error, 1)
	go func() { closed <- h.main.Close() }()
	pollUntil(t, "the broker to wait for the refresh in flight, or to stop", func() bool {
		return len(closed) == 1 || strings.Contains(h.logs.String(), "waiting for refreshes and exchanges in flight")
	})
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close() error = %v", err)
	}

	// The next broker on the same store: the rotated token is the stored one.
	h.conn.Close()
	h.start()
	if status, body := h.call("POST", "/v1/links/alice:refresh", admin, ""); status != http.StatusOK {
		t.Fatalf("refresh after restart: %d %s, want 200 (the rotated refresh token stored)", status, body)
	}
	if got := h.sims.LWA.Stats().RefreshesOK; got != 2 {
		t.Errorf("LWA refreshes = %d, want 2", got)
	}
}

// TestReciprocal_SlowExchange hands a code over while LWA's answer comes after
// the 4 s Alexa waits: the first call is 503, the exchange runs on and stores
// the link, and Alexa's retry of the code is 200 without a second exchange.
func TestReciprocal_SlowExchange(t *testing.T) {
	h := newHarness(t)
	release := h.sims.LWA.HoldAnswers()
	t.Cleanup(release)
	form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor("alice")}, "client_id": {alexaClient}}
	bearer := "Bearer " + h.userToken("alice")

	start := time.Now()
	status, body, _ := h.authorize(form, bearer)
	elapsed := time.Since(start)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("first hand-over: %d %s, want 503 temporarily_unavailable", status, body)
	}
	if elapsed > 4500*time.Millisecond {
		t.Errorf("first hand-over answered after %v, want within Alexa's 4.5 s", elapsed)
	}
	if got := h.sims.LWA.Held(); got != 1 {
		t.Fatalf("LWA answers held = %d, want 1: the exchange must still wait for LWA", got)
	}

	release() // LWA's answer arrives after Alexa gave up
	if status, body, _ := h.authorize(form, bearer); status != http.StatusOK || body != "{}" {
		t.Fatalf("Alexa's retry: %d %s, want 200 {}", status, body)
	}
	status, body = h.call("GET", "/v1/links/alice", h.clientToken("broker:admin"), "")
	var link struct{ State string }
	if err := json.Unmarshal([]byte(body), &link); err != nil || status != http.StatusOK || link.State != "LINKED" {
		t.Fatalf("GET link: %d %s, want 200 LINKED", status, body)
	}
	if got := h.sims.LWA.Stats().Exchanges; got != 1 {
		t.Errorf("LWA exchanges = %d, want exactly 1", got)
	}
}
