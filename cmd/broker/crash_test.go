package main

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/events/eventstest"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// TestWebhooks_KillDashNine: the receiver is down while links change, and the
// broker process is killed with SIGKILL after attempts failed with 503; a new
// process on the same bbolt file retries them, still against the receiver
// down, and once it is up every stored event arrives, delivered once, in the
// order each user's events occurred, every attempt with the event's id as
// webhook-id, and the standardwebhooks npm package verifies every request.
func TestWebhooks_KillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBroker(t)
	sims, err := sim.StartSet(context.Background(), sim.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sims.Close() })
	hooks := sims.Webhooks
	hooks.SetDown(true)
	env := map[string]string{
		"BROKER_GRPC_ADDR":      "127.0.0.1:0",
		"BROKER_HTTP_ADDR":      "127.0.0.1:0",
		"BROKER_STORE":          "bolt:" + filepath.Join(t.TempDir(), "broker.db"),
		"BROKER_ENCRYPTION_KEY": testKey,
	}
	maps.Copy(env, sims.BrokerEnv())

	// The harness's helpers, pointed at the child instead of a Main.
	h := &harness{tb: t, sims: sims}
	first := startChild(t, bin, env)
	h.base = first.base
	users := []string{"user-a", "user-b", "user-c"}
	for _, u := range users {
		h.link(u)
	}
	if status, body := h.call("DELETE", "/v1/links/user-a?reason=user_request", h.clientToken("broker:admin"), ""); status != http.StatusOK {
		t.Fatalf("delete: %d %s", status, body)
	}

	// Kill the first process once each user's oldest event failed with 503,
	// its retry is stored, and no attempt is in flight or about to start.
	d, err := events.NewDeliverer(nil, hooks.URL(), hooks.Secret())
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 15*time.Second, "every user's first attempt failed and the broker idle", func() bool {
		return idle(hooks.Received(), strings.Count(first.logs.String(), `"msg":"webhook will be retried"`), len(users), d.MinBackoff, time.Now())
	})
	first.kill(t)
	beforeKill := len(hooks.Received())

	second := startChild(t, bin, env)
	h.base = second.base
	waitUntil(t, 10*time.Second, "an attempt of the new process while the receiver is down", func() bool {
		return len(hooks.Received()) > beforeKill
	})
	hooks.SetDown(false)

	// Every stored event the webhook is configured for, oldest first per user.
	want := map[string][]string{}
	sent := map[string]bool{}
	for _, typ := range events.DefaultTypes {
		sent[string(typ)] = true
	}
	stored := h.events("/v1/events")
	slices.Reverse(stored)
	var types []string
	for _, e := range stored {
		if sent[e.Type] {
			want[e.UserID] = append(want[e.UserID], e.ID)
			types = append(types, e.UserID+" "+e.Type)
		}
	}
	slices.Sort(types)
	if wantTypes := []string{"user-a link.deleted", "user-a link.linked", "user-b link.linked", "user-c link.linked"}; !slices.Equal(types, wantTypes) {
		t.Fatalf("stored events %q, want %q", types, wantTypes)
	}
	waitUntil(t, 20*time.Second, "every stored event delivered", func() bool {
		done := map[string]bool{}
		for _, e := range hooks.Delivered() {
			done[e.ID] = true
		}
		for _, ids := range want {
			for _, id := range ids {
				if !done[id] {
					return false
				}
			}
		}
		return true
	})
	got := map[string][]string{}
	for _, e := range hooks.Delivered() {
		got[e.UserID] = append(got[e.UserID], e.ID)
	}
	for _, u := range users {
		if !slices.Equal(got[u], want[u]) {
			t.Errorf("%s: delivered %q, want once each in the order they occurred, %q", u, got[u], want[u])
		}
	}

	received := hooks.Received()
	ids := map[string]map[string]bool{} // event id: the webhook-ids it came with
	acrossCrash := 0
	var all []eventstest.Webhook
	for i, r := range received {
		if ids[r.Event.ID] == nil {
			ids[r.Event.ID] = map[string]bool{}
		}
		ids[r.Event.ID][r.ID] = true
		if i < beforeKill && r.Status != http.StatusServiceUnavailable {
			t.Errorf("request %d before the kill answered %d, want 503", i, r.Status)
		}
		if i >= beforeKill && r.Status == http.StatusNoContent && slices.ContainsFunc(received[:beforeKill], func(b sim.ReceivedWebhook) bool { return b.Event.ID == r.Event.ID }) {
			acrossCrash++
		}
		if !r.Verified {
			t.Errorf("request %d (%s) failed the receiver's own signature check", i, r.Event.Type)
		}
		all = append(all, eventstest.Webhook{ID: r.ID, Timestamp: r.Timestamp, Signature: r.Signature, Body: r.Body})
	}
	for event, whIDs := range ids {
		if len(whIDs) != 1 || !whIDs[event] {
			t.Errorf("event %s came with webhook-ids %v, want only its own id", event, slices.Collect(maps.Keys(whIDs)))
		}
	}
	if acrossCrash < len(users) {
		t.Errorf("%d events delivered after the kill had failed before it, want every user's first (%d)", acrossCrash, len(users))
	}
	for i, r := range eventstest.Verify(t, hooks.Secret(), all) {
		if !r.OK {
			t.Errorf("the standardwebhooks library refused request %d: %s", i, r.Error)
		}
	}
	t.Logf("%d requests for 4 events, %d of them before the kill", len(received), beforeKill)
}

// idle reports whether, at now, the broker that made the attempts recs is
// idle: each of the users has had an attempt, each attempt was
// answered and its retry stored (retried counts the broker's log lines saying
// so), the last answer is old enough for the user's claim to be given back,
// and no event's next attempt can start yet (retry.Backoff waits at least half
// of minBackoff doubled per earlier attempt). Killed then, the broker dies
// holding no claim and no attempt, so the next process retries at once
// instead of after the claims run out.
func idle(recs []sim.ReceivedWebhook, retried, users int, minBackoff time.Duration, now time.Time) bool {
	const margin = 100 * time.Millisecond
	if retried != len(recs) {
		return false
	}
	last := map[string]time.Time{}
	attempts := map[string]int{}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Status == 0 {
			return false
		}
		seen[r.Event.UserID] = true
		attempts[r.Event.ID]++
		last[r.Event.ID] = r.At
	}
	if len(seen) != users {
		return false
	}
	for id, at := range last {
		earliest := at.Add(minBackoff << (attempts[id] - 1) / 2)
		if now.Sub(at) < margin || now.After(earliest.Add(-margin)) {
			return false
		}
	}
	return true
}

// child is `broker serve` run from the built binary as a child process.
type child struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	base   string // http://host:port of the gateway
	exited chan struct{}
}

// startChild runs `broker serve` from bin with exactly env as its
// environment, and returns once it serves; the test kills it at the end.
func startChild(tb testing.TB, bin string, env map[string]string) *child {
	tb.Helper()
	c := &child{logs: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, "serve")
	c.cmd.Dir = filepath.Dir(bin)
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		c.cmd.Wait()
		close(c.exited)
	}()
	tb.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.exited
	})
	waitUntil(tb, 15*time.Second, "the broker serving", func() bool {
		select {
		case <-c.exited:
			tb.Fatalf("the broker exited: %s\n%s", c.cmd.ProcessState, c.logs.String())
		default:
		}
		c.base = servingAddr(c.logs.String())
		return c.base != ""
	})
	return c
}

// servingAddr returns the gateway's base URL from the "broker serving" log
// line, or "" before it is logged.
func servingAddr(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg      string `json:"msg"`
			HTTPAddr string `json:"http_addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "broker serving" && line.HTTPAddr != "" {
			return "http://" + line.HTTPAddr
		}
	}
	return ""
}

// kill sends the child SIGKILL, as `kill -9` does, and waits for it to die.
func (c *child) kill(tb testing.TB) {
	tb.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		tb.Fatal(err)
	}
	<-c.exited
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		tb.Fatalf("the broker ended %s, want killed by SIGKILL", c.cmd.ProcessState)
	}
}
