package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// Names the sandbox plays with.
const (
	demoUser     = "demo-parent"
	demoAlexa    = "alexa-skill-client"
	demoBackend  = "companion-backend"
	shortLived   = 4 * time.Minute
	storyTimeout = 30 * time.Second
)

// sandbox runs the real broker on the embedded store, wired to the simulators,
// plays the mutual-linking story once, then serves until ctx ends.
func sandbox(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, faults := newSimFlagSet("broker sandbox", "before the story", stderr)
	data := fs.String("data", "", "folder for the embedded store and the sandbox's key (default: a fresh temporary folder, removed at exit)")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:9090", "broker gRPC listen address")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "broker HTTP listen address")
	adminAddr := fs.String("admin-addr", "127.0.0.1:8089", "simulators' admin route (faults, fresh codes)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "broker sandbox: %v\n", err); return 1 }

	dir, temporary := *data, *data == ""
	if temporary {
		var err error
		if dir, err = os.MkdirTemp("", "broker-sandbox-"); err != nil {
			return fail(err)
		}
		defer os.RemoveAll(dir)
	}
	key, err := sandboxKey(dir)
	if err != nil {
		return fail(err)
	}
	sims, err := sim.StartSet(ctx, sim.SetOptions{AdminAddr: *adminAddr, User: demoUser, AlexaClientID: demoAlexa})
	if err != nil {
		return fail(err)
	}
	defer sims.Close()
	p := &printer{w: stdout}
	if err := applyFaults(p, sims, *faults); err != nil {
		return fail(err)
	}

	env := sims.BrokerEnv()
	env["BROKER_GRPC_ADDR"], env["BROKER_HTTP_ADDR"] = *grpcAddr, *httpAddr
	env["BROKER_STORE"] = "bolt:" + filepath.Join(dir, "broker.db")
	env["BROKER_ENCRYPTION_KEY"] = key
	c, err := config.Parse(nil, func(k string) string { return env[k] })
	if err != nil {
		return fail(err)
	}
	logPath := filepath.Join(dir, "broker.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	m := NewMain()
	m.Config, m.Stdout = c, logFile
	m.ReportMinBackoff = time.Second
	m.ReportPollInterval = 200 * time.Millisecond
	m.WebhookPollInterval, m.WebhookMinBackoff = 200*time.Millisecond, time.Second
	if err := m.Run(ctx); err != nil {
		m.Close()
		return fail(err)
	}
	defer m.Close()

	where := dir + " (removed at exit)"
	if !temporary {
		where = dir
	}
	p.line("Reciprocal token broker — sandbox")
	p.line("  data       %s", where)
	p.line("  broker     gRPC %s · HTTP http://%s · logs %s", m.Server.GRPCAddr(), m.Server.HTTPAddr(), logPath)
	p.line("  simulated  LWA %s · Alexa Health API %s", sims.LWA.TokenURL(), sims.Alexa.URL())
	p.line("             partner authorization server %s (JWKS %s)", sims.Auth.Issuer(), sims.Auth.JWKSURL())
	p.line("             companion backend's webhook receiver %s", sims.Webhooks.URL())
	p.line("")

	tok := newDevTokens(sims.Auth)
	st := &story{p: p, sims: sims, tok: tok, base: "http://" + m.Server.HTTPAddr(), client: &http.Client{Timeout: 10 * time.Second}}
	storyCtx, cancel := context.WithTimeout(ctx, storyTimeout)
	err = st.play(storyCtx)
	if err != nil {
		p.line("✗ the story stopped: %v", err)
		p.line("  (the broker keeps serving; its log is %s)", logPath)
	}
	st.webhooks(storyCtx, err != nil)
	cancel()
	p.line("")
	printTryIt(p, m.Server.GRPCAddr(), "http://"+m.Server.HTTPAddr(), sims.AdminURL(), tok)
	p.line("")
	p.line("Serving. Ctrl-C stops the broker and the simulators.")
	<-ctx.Done()
	p.line("stopping")
	return 0
}

// sandboxKey returns the sealing key kept in dir, making one on first use, so
// that a sandbox started again on the same --data opens its stored tokens.
func sandboxKey(dir string) (string, error) {
	path := filepath.Join(dir, "sandbox.key")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	key := base64.StdEncoding.EncodeToString(randomBytes(32))
	return key, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
