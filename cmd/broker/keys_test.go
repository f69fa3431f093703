package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// otherKey and thirdKey are sealing keys besides testKey.
var (
	otherKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{10}, 32))
	thirdKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{11}, 32))
)

// keyID returns the id of the base64 key b64.
func keyID(tb testing.TB, b64 string) string {
	tb.Helper()
	k, err := seal.ParseKey(b64)
	if err != nil {
		tb.Fatal(err)
	}
	return k.ID()
}

// rekey restarts h's broker with BROKER_ENCRYPTION_KEY=keys.
func (h *harness) rekey(keys string) {
	h.tb.Helper()
	h.config.EncryptionKey = tokens.Secret(keys)
	h.restart()
}

// sealedLinks scrapes broker_sealed_links from the broker's /metrics.
func (h *harness) sealedLinks() map[string]int {
	h.tb.Helper()
	req, err := http.NewRequest("GET", h.base+"/metrics", nil)
	if err != nil {
		h.tb.Fatal(err)
	}
	_, body, _ := h.do(req)
	got := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), `broker_sealed_links{key_id="`)
		if !ok {
			continue
		}
		id, value, _ := strings.Cut(rest, `"} `)
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			h.tb.Fatalf("broker_sealed_links line %q", sc.Text())
		}
		got[id] = int(n)
	}
	return got
}

// waitSealedLinks polls /metrics until broker_sealed_links is want.
func (h *harness) waitSealedLinks(want map[string]int) {
	h.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got map[string]int
	for time.Now().Before(deadline) {
		if got = h.sealedLinks(); maps.Equal(got, want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.tb.Fatalf("broker_sealed_links = %v, want %v within 10s", got, want)
}

// partnerTokens fails the test unless each user gets a valid partner token.
func (h *harness) partnerTokens(t *testing.T, users ...string) {
	t.Helper()
	scope := h.clientToken("broker:tokens")
	for _, u := range users {
		if tok, status := transports["HTTP"](t, h, scope, u); status != 200 || !h.sims.LWA.ValidAccessToken(tok) {
			t.Errorf("partner token of %s: status %d", u, status)
		}
	}
}

// TestKeys_Rotation: from key A to the list [B, A], every link ends up sealed
// under B in the background, counted by broker_sealed_links, and every token
// still opens, then also once A is gone from the list.
func TestKeys_Rotation(t *testing.T) {
	h := newHarness(t)
	a, b := keyID(t, testKey), keyID(t, otherKey)
	users := []string{"rot-1", "rot-2", "rot-3"}
	for _, u := range users {
		h.link(u)
	}
	h.restart() // the links are counted at start-up, then hourly
	h.waitSealedLinks(map[string]int{a: 3})

	h.rekey(otherKey + "," + testKey)
	h.waitSealedLinks(map[string]int{b: 3, a: 0})
	h.partnerTokens(t, users...)

	h.rekey(otherKey) // A can go
	h.waitSealedLinks(map[string]int{b: 3})
	h.partnerTokens(t, users...)
}

// TestKeys_NextWrite: with background re-sealing off, a link is sealed under
// the first key at its next write (a refresh).
func TestKeys_NextWrite(t *testing.T) {
	h := newHarness(t)
	a, b := keyID(t, testKey), keyID(t, otherKey)
	h.link("writer")
	h.config.ResealRate = 0
	h.rekey(otherKey + "," + testKey)
	h.waitSealedLinks(map[string]int{b: 0, a: 1})

	h.clock.Advance(56 * time.Minute) // within 5 min of expiry: refreshed
	h.partnerTokens(t, "writer")
	h.restart() // counts again at start
	h.waitSealedLinks(map[string]int{b: 1, a: 0})
}

// TestKeys_Missing: a link sealed under a key no longer configured answers
// 500 naming the key id, /readyz stays 200, and the start-up log warns naming
// the key id.
func TestKeys_Missing(t *testing.T) {
	h := newHarness(t)
	a := keyID(t, testKey)
	h.link("orphan")
	h.rekey(otherKey)

	if got := waitForLog(t, h.logs, keyMissingLog, "key_id"); got != a {
		t.Errorf("start-up warning names key %q, want %q", got, a)
	}
	status, body := h.call("POST", "/v1/partner-token", h.clientToken("broker:tokens"), `{"user_id":"orphan"}`)
	if status != http.StatusInternalServerError || !strings.Contains(body, a) {
		t.Errorf("partner token = %d %s, want 500 naming key id %s", status, body, a)
	}
	req, _ := http.NewRequest("GET", h.base+"/readyz", nil)
	if status, _, _ := h.do(req); status != 200 {
		t.Errorf("/readyz = %d, want 200", status)
	}
	h.waitSealedLinks(map[string]int{keyID(t, otherKey): 0, a: 1})
}

// TestKeys_StaticToKMS: moving from a base64 key to kms: is a rotation like
// any other: the list [kms:KEY, base64] opens the old links, seals them again
// under KMS, and no user links again.
func TestKeys_StaticToKMS(t *testing.T) {
	fakeAWSEnv(t)
	h := newHarnessWith(t, sim.SetOptions{KMS: true}, map[string]string{"BROKER_ENCRYPTION_KEY": testKey})
	a, kmsID := keyID(t, testKey), seal.KMSKeyIDPrefix+sim.DefaultKMSKeyID
	h.link("migrant")
	h.restart()
	h.waitSealedLinks(map[string]int{a: 1})

	h.rekey("kms:" + sim.DefaultKMSKeyID + "," + testKey)
	h.waitSealedLinks(map[string]int{kmsID: 1, a: 0})
	h.partnerTokens(t, "migrant")

	h.rekey("kms:" + sim.DefaultKMSKeyID)
	h.waitSealedLinks(map[string]int{kmsID: 1})
	h.partnerTokens(t, "migrant")
}

// TestKeysStatus runs `broker keys status`: refused while a broker holds the
// bbolt file, then the table of key ids, their links and their status.
func TestKeysStatus(t *testing.T) {
	h := newHarness(t)
	a, b, c := keyID(t, testKey), keyID(t, otherKey), keyID(t, thirdKey)
	h.link("s-1")
	h.link("s-2")
	h.config.EncryptionKey = tokens.Secret(thirdKey)
	h.config.ResealRate = 0
	h.restart()
	h.link("s-3") // under C

	env := h.sims.BrokerEnv()
	env["BROKER_STORE"] = "bolt:" + h.dbPath
	env["BROKER_ENCRYPTION_KEY"] = otherKey + "," + thirdKey // A missing
	status := func() (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"keys", "status"}, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	t.Run("BrokerRunning", func(t *testing.T) {
		code, _, stderr := status()
		if code != 1 || !strings.Contains(stderr, "locked") {
			t.Errorf("keys status = %d, stderr %q; want 1 and the file locked", code, stderr)
		}
	})
	if err := h.main.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("Table", func(t *testing.T) {
		code, stdout, stderr := status()
		if code != 0 {
			t.Fatalf("keys status = %d: %s", code, stderr)
		}
		for _, want := range []string{
			b + "  0      configured, first: seals and opens",
			c + "  1      configured: opens; its links are sealed again under the first key",
			a + "  2      MISSING",
			"total             3",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("keys status output lacks %q:\n%s", want, stdout)
			}
		}
		for _, secret := range []string{testKey, otherKey, thirdKey} {
			if strings.Contains(stdout+stderr, secret) {
				t.Error("keys status shows a key")
			}
		}
	})
	t.Run("Usage", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"keys"}, func(string) string { return "" }, &stdout, &stderr); code != 2 {
			t.Errorf("keys without status = %d, want 2", code)
		}
	})
}

// TestKeysStatus_DynamoDB: on DynamoDB, `broker keys status` reads the table
// while the broker runs.
func TestKeysStatus_DynamoDB(t *testing.T) {
	h, endpoint, table := newDynamoHarness(t)
	h.link("d-1")
	env := h.sims.BrokerEnv()
	env["BROKER_STORE"] = "dynamodb:" + table
	env["BROKER_DYNAMODB_ENDPOINT"] = endpoint
	env["BROKER_ENCRYPTION_KEY"] = testKey
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"keys", "status"}, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("keys status = %d: %s", code, stderr.String())
	}
	if want := keyID(t, testKey) + "  1      configured, first"; !strings.Contains(stdout.String(), want) {
		t.Errorf("keys status output lacks %q:\n%s", want, stdout.String())
	}
}
