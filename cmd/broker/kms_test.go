package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestKMS_EndToEnd boots the broker with BROKER_ENCRYPTION_KEY=kms:KEY_ID on
// the KMS simulator: it links a user, hands out a refreshed partner token,
// keeps working across a restart (a new data key, the old one unwrapped by KMS
// once), and never writes a token in clear.
func TestKMS_EndToEnd(t *testing.T) {
	fakeAWSEnv(t)
	h := newHarnessWith(t, sim.SetOptions{KMS: true}, nil)
	k := h.sims.KMS
	if got := k.Stats().GenerateDataKey; got != 1 {
		t.Fatalf("GenerateDataKey calls at start-up = %d, want 1", got)
	}
	scope := h.clientToken("broker:tokens")
	h.link("kms-user")

	var access []string
	get := func(step string) {
		t.Helper()
		h.clock.Advance(56 * time.Minute) // within 5 min of expiry: refreshed
		tok, status := transports["HTTP"](t, h, scope, "kms-user")
		if status != 200 || !h.sims.LWA.ValidAccessToken(tok) {
			t.Fatalf("%s: partner token: status %d, valid %v", step, status, h.sims.LWA.ValidAccessToken(tok))
		}
		access = append(access, tok)
	}
	get("after refresh")
	if got := k.Stats().Decrypt; got != 0 {
		t.Errorf("Decrypt calls = %d, want 0: the instance's own data key needs no KMS call", got)
	}

	h.restart() // a new process: a new data key, the stored record under the old one
	get("after restart")
	get("after restart, again")
	if got := k.Stats().Decrypt; got != 1 {
		t.Errorf("Decrypt calls after the restart = %d, want 1 (the old data key, then cached)", got)
	}
	if got := k.Stats().GenerateDataKey; got != 2 {
		t.Errorf("GenerateDataKey calls = %d, want 2 (one per start)", got)
	}

	if err := h.main.Close(); err != nil { // bolt holds the file open
		t.Fatal(err)
	}
	db, err := os.ReadFile(h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(db, []byte(seal.EnvelopeKeyPrefix)) {
		t.Errorf("the database file has no %s record: the tokens were not sealed by KMS envelope encryption", seal.EnvelopeKeyPrefix)
	}
	for _, s := range append([]string{"Atza|", "Atzr|"}, access...) {
		if bytes.Contains(db, []byte(s)) {
			t.Errorf("the database file holds a token in clear (%.8s…)", s)
		}
	}
}

// TestKMS_StartFailure: a KMS key the broker cannot use stops it at start-up,
// naming BROKER_ENCRYPTION_KEY.
func TestKMS_StartFailure(t *testing.T) {
	fakeAWSEnv(t)
	h := newHarnessWith(t, sim.SetOptions{KMS: true}, nil) // for a valid configuration
	k := h.sims.KMS
	for _, tc := range []struct {
		name     string
		key      string
		endpoint string
	}{
		{"UnknownKey", "kms:no-such-key", k.URL()},
		{"NoRegion", "kms:" + sim.DefaultKMSKeyID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "NoRegion" {
				t.Setenv("AWS_REGION", "")
				t.Setenv("AWS_DEFAULT_REGION", "")
			}
			m := NewMain()
			m.Config, m.Stdout = h.config, &syncBuffer{}
			m.Config.StoreTarget = filepath.Join(t.TempDir(), "broker.db")
			m.Config.Store = "bolt:" + m.Config.StoreTarget
			m.Config.EncryptionKey = tokens.Secret(tc.key)
			m.Config.KMSEndpoint = tc.endpoint
			err := m.Run(context.Background())
			t.Cleanup(func() { m.Close() })
			t.Logf("Run: %v", err)
			if err == nil || !strings.Contains(err.Error(), "BROKER_ENCRYPTION_KEY") {
				t.Fatalf("Run error = %v, want one naming BROKER_ENCRYPTION_KEY", err)
			}
		})
	}
}
