package main

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/events/eventstest"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// waitUntil polls ok every 20 ms until it holds, failing tb after limit.
func waitUntil(tb testing.TB, limit time.Duration, what string, ok func() bool) {
	tb.Helper()
	end := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(end) {
			tb.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWebhooks_DownThenUp: the receiver is down while links change and the
// broker restarts on the same store; once it is up, every event arrives, in
// order per user, delivered once, each attempt with the event's id as
// webhook-id, and the standardwebhooks npm package verifies every request.
func TestWebhooks_DownThenUp(t *testing.T) {
	h := newHarness(t)
	hooks := h.sims.Webhooks
	hooks.SetDown(true)
	for _, u := range []string{"user-a", "user-b", "user-c"} {
		h.link(u)
	}
	if status, body := h.call("DELETE", "/v1/links/user-a?reason=user_request", h.clientToken("broker:admin"), ""); status != http.StatusOK {
		t.Fatalf("delete: %d %s", status, body)
	}
	waitUntil(t, 10*time.Second, "an attempt of each user while down", func() bool {
		users := map[string]bool{}
		for _, r := range hooks.Received() {
			users[r.Event.UserID] = true
		}
		return len(users) == 3
	})
	h.restart()
	hooks.SetDown(false)
	want := map[string][]string{"user-a": {"link.linked", "link.deleted"}, "user-b": {"link.linked"}, "user-c": {"link.linked"}}
	got := map[string][]string{}
	waitUntil(t, 20*time.Second, "every event delivered", func() bool {
		got = map[string][]string{}
		for _, e := range hooks.Delivered() {
			got[e.UserID] = append(got[e.UserID], e.Type)
		}
		for u, types := range want {
			if !slices.Equal(got[u], types) {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond) // ten polls: nothing more may come
	delivered := map[string]int{}
	var all []eventstest.Webhook
	for _, r := range hooks.Received() {
		if r.ID != r.Event.ID {
			t.Errorf("webhook-id %q on a request of event %q", r.ID, r.Event.ID)
		}
		if r.Status == http.StatusNoContent {
			delivered[r.ID]++
		}
		all = append(all, eventstest.Webhook{ID: r.ID, Timestamp: r.Timestamp, Signature: r.Signature, Body: r.Body})
	}
	for id, n := range delivered {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if len(delivered) != 4 {
		t.Errorf("%d events delivered, want 4", len(delivered))
	}
	for i, r := range eventstest.Verify(t, hooks.Secret(), all) {
		if !r.OK {
			t.Errorf("the standardwebhooks library refused request %d: %s", i, r.Error)
		}
	}
}

// TestWebhooks_HangingReceiver: a receiver that never answers does not slow
// partner-token calls.
func TestWebhooks_HangingReceiver(t *testing.T) {
	h := newHarnessWith(t, sim.SetOptions{}, nil)
	h.sims.Webhooks.SetDelay(time.Hour)
	for _, u := range []string{"user-a", "user-b"} {
		h.link(u)
	}
	waitUntil(t, 5*time.Second, "the receiver holding requests", func() bool { return len(h.sims.Webhooks.Received()) == 2 })
	tok := h.clientToken("broker:tokens")
	var slowest time.Duration
	for range 50 {
		start := time.Now()
		if status, body := h.call("POST", "/v1/partner-token", tok, `{"user_id":"user-a"}`); status != http.StatusOK {
			t.Fatalf("partner token: %d %s", status, body)
		}
		slowest = max(slowest, time.Since(start))
	}
	if slowest > time.Second {
		t.Errorf("the slowest partner-token call took %v while the receiver hangs", slowest)
	}
	if n := len(h.sims.Webhooks.Received()); n != 2 {
		t.Errorf("%d requests within the 10 s timeout, want the 2 hanging", n)
	}
}
