// Package eventstest verifies webhooks for tests with the standardwebhooks npm
// package (pinned in package.json at the module root), an implementation of
// the Standard Webhooks specification independent of the broker's, run by
// node on verify.mjs.
//
// When node or the package is missing, the tests that need it are skipped,
// unless the environment variable CI is "true": then they fail, so that a CI
// run cannot pass without them. `npm ci` at the module root installs it.
package eventstest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Webhook is one signed webhook as a receiver got it.
type Webhook struct {
	// ID, Timestamp and Signature are its webhook-id, webhook-timestamp and
	// webhook-signature headers.
	ID, Timestamp, Signature string
	// Body is its body, byte for byte.
	Body []byte
}

// Result is the library's judgement of one Webhook.
type Result struct {
	// OK says whether the library's verify accepted it: the signature, and a
	// timestamp within 5 minutes of now.
	OK bool `json:"ok"`
	// Error is the library's reason when it did not.
	Error string `json:"error"`
	// Signature is what the library's sign makes of the same id, timestamp and
	// body.
	Signature string `json:"signature"`
}

// Verify checks each webhook with the library under secret, in one node
// process, and returns the results in order. It skips tb (fails it under
// CI=true) when node or the package is missing.
func Verify(tb testing.TB, secret tokens.Secret, webhooks []Webhook) []Result {
	tb.Helper()
	node, script, err := paths()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("eventstest: %v", err)
		}
		tb.Skipf("eventstest: %v", err)
	}
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, w := range webhooks {
		_ = enc.Encode(map[string]string{"secret": secret.Reveal(), "id": w.ID, "timestamp": w.Timestamp, "signature": w.Signature, "body": string(w.Body)})
	}
	cmd := exec.Command(node, script)
	cmd.Stdin = &in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("eventstest: node %s: %v: %s", script, err, stderr.String())
	}
	var results []Result
	dec := json.NewDecoder(&out)
	for dec.More() {
		var r Result
		if err := dec.Decode(&r); err != nil {
			tb.Fatalf("eventstest: reading node's answer: %v", err)
		}
		results = append(results, r)
	}
	if len(results) != len(webhooks) {
		tb.Fatalf("eventstest: %d results for %d webhooks", len(results), len(webhooks))
	}
	return results
}

// paths returns node and verify.mjs, once the package is installed.
func paths() (node, script string, err error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", "", errors.New("cannot find verify.mjs")
	}
	dir := filepath.Dir(file)
	script = filepath.Join(dir, "verify.mjs")
	root := dir
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", "", errors.New("no go.mod above verify.mjs")
		}
		root = parent
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "standardwebhooks", "package.json")); err != nil {
		return "", "", fmt.Errorf("the standardwebhooks package is not installed (run `npm ci` in %s): %w", root, err)
	}
	if node, err = exec.LookPath("node"); err != nil {
		return "", "", fmt.Errorf("node is not installed: %w", err)
	}
	return node, script, nil
}
