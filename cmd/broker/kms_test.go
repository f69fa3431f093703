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

// startKMSSim starts the KMS simulator and points the AWS SDK's default
// configuration at made-up credentials and a region, as an operator's
// environment would; the simulator does not check signatures.
func startKMSSim(t *testing.T) *sim.KMS {
	t.Helper()
	k := sim.NewKMS(sim.KMSOptions{})
	if err := k.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSIMULATOR")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "simulator-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	return k
}

// TestKMS_EndToEnd boots the broker with BROKER_ENCRYPTION_KEY=kms:KEY_ID on
// the KMS simulator: it links a user, hands out a refreshed partner token,
// keeps working across a restart (a new data key, the old one unwrapped by KMS
// once), and never writes a token in clear.
func TestKMS_EndToEnd(t *testing.T) {
	k := startKMSSim(t)
	h := newHarnessWith(t, map[string]string{
		"BROKER_ENCRYPTION_KEY": "kms:" + sim.DefaultKMSKeyID,
		"BROKER_KMS_ENDPOINT":   k.URL(),
	})
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
		if status != 200 || !h.lwa.ValidAccessToken(tok) {
			t.Fatalf("%s: partner token: status %d, valid %v", step, status, h.lwa.ValidAccessToken(tok))
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
	k := startKMSSim(t)
	h := newHarness(t) // for a valid configuration
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
