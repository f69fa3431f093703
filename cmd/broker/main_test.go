package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	testClientSecret = "lwa-client-secret-value-1234"
	testHSSecret     = "hs256-secret-value-0123456789abcdef"
)

var testKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

// testEnv is a complete configuration on free loopback ports in dir.
func testEnv(dir string) map[string]string {
	return map[string]string{
		"BROKER_GRPC_ADDR":         "127.0.0.1:0",
		"BROKER_HTTP_ADDR":         "127.0.0.1:0",
		"BROKER_STORE":             "bolt:" + dir + "/broker.db",
		"BROKER_LWA_CLIENT_ID":     "amzn1.application-oa2-client.test",
		"BROKER_LWA_CLIENT_SECRET": testClientSecret,
		"BROKER_ALEXA_CLIENT_IDS":  "alexa-skill-client",
		"BROKER_JWT_ISSUER":        "https://auth.partner.example",
		"BROKER_JWT_AUDIENCE":      "broker",
		"BROKER_JWT_HS256_SECRET":  testHSSecret,
		"BROKER_ENCRYPTION_KEY":    testKey,
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRun_InvalidSetting(t *testing.T) {
	tests := []struct{ name, env, value, names string }{
		{"MissingSecret", "BROKER_LWA_CLIENT_SECRET", "", ""},
		{"BadKey", "BROKER_ENCRYPTION_KEY", "c2hvcnQ=", ""},
		{"BadDuration", "BROKER_REFRESH_AHEAD", "later", ""},
		{"BadStore", "BROKER_STORE", "memory", ""},
		{"BadAddr", "BROKER_GRPC_ADDR", "nowhere", ""},
		{"UnknownProfile", "BROKER_JWT_PROFILE", "azure-b2c", ""},
		{"CognitoWithoutClients", "BROKER_JWT_PROFILE", "cognito", "BROKER_JWT_CLIENTS:"},
		{"ScopeForTwoRights", "BROKER_SCOPE_PROFILES", "broker:tokens", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv(t.TempDir())
			env[tt.env] = tt.value
			var stdout, stderr syncBuffer
			code := run(t.Context(), nil, func(k string) string { return env[k] }, &stdout, &stderr)
			if code == 0 {
				t.Fatal("exit code 0, want non-zero")
			}
			msg := stderr.String()
			names := cmp.Or(tt.names, tt.env)
			if !strings.Contains(msg, names) || strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr = %q, want one line naming %s", msg, names)
			}
			for _, secret := range []string{testClientSecret, testHSSecret, testKey} {
				if strings.Contains(msg+stdout.String(), secret) {
					t.Errorf("output contains a secret: %q", msg)
				}
			}
		})
	}
}

func TestRun_Help(t *testing.T) {
	env := testEnv(t.TempDir())
	var stdout, stderr syncBuffer
	if code := run(t.Context(), []string{"--help"}, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	help := stdout.String()
	if !strings.Contains(help, "BROKER_LWA_CLIENT_SECRET") || !strings.Contains(help, `(default "127.0.0.1:9090")`) {
		t.Errorf("help lacks settings or defaults:\n%s", help)
	}
	for _, secret := range []string{testClientSecret, testHSSecret, testKey} {
		if strings.Contains(help, secret) {
			t.Error("help shows a secret from the environment")
		}
	}
}

// TestRun_SIGTERM boots the real program, waits for /readyz, sends the process
// SIGTERM and expects a clean exit.
func TestRun_SIGTERM(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	env := testEnv(t.TempDir())
	var stdout, stderr syncBuffer
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, nil, func(k string) string { return env[k] }, &stdout, &stderr) }()

	addr := waitForLog(t, &stdout, "broker serving", "http_addr")
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d, want 200", resp.StatusCode)
	}

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0; stderr: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("broker did not exit within 15s of SIGTERM")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("HTTP still accepted after exit")
	}
	for _, secret := range []string{testClientSecret, testHSSecret, testKey} {
		if strings.Contains(stdout.String()+stderr.String(), secret) {
			t.Error("logs contain a secret")
		}
	}
}

// waitForLog polls the JSON log for a line with msg and returns its field.
func waitForLog(tb testing.TB, log *syncBuffer, msg, field string) string {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(log.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				if v, ok := rec[field].(string); ok {
					return v
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("no %q log line with %s within 10s; log:\n%s", msg, field, log.String())
	return ""
}
