package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/console"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// Names the sandbox plays with.
const (
	demoUser        = "demo-parent"
	demoBackend     = "companion-backend"
	demoDeviceCloud = "device-cloud"
	storyTimeout    = 30 * time.Second
)

// The sandbox's skills, and the client ids the partner issued to Alexa for
// them: a baby-activity skill whose users link by Alexa's reciprocal hand-over,
// and a smart-home skill whose Lambda forwards Alexa's AcceptGrant directive.
const (
	babySkill = "baby"
	babyAlexa = "alexa-baby"
	homeSkill = "home"
	homeAlexa = "alexa-home"
)

// sandboxSkills are the skills the simulators serve, for the sandbox's broker
// and for one that `broker simulate` points at them.
var sandboxSkills = []sim.Skill{
	{ID: babySkill, AlexaClientID: babyAlexa, Region: "NA"},
	{ID: homeSkill, AlexaClientID: homeAlexa, Region: "EU"},
}

// sandbox runs the real broker of two skills on the embedded store, wired to
// the simulators, plays each skill's linking story once, then serves until ctx
// ends.
func sandbox(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, faults, ports := newSimFlagSet("broker sandbox", "before the story", stderr)
	data := fs.String("data", "", "folder for the embedded store and the sandbox's key (default: a fresh temporary folder, removed at exit)")
	grpcAddr := ports.addr("grpc-addr", "127.0.0.1:9090", "broker gRPC listen address")
	httpAddr := ports.addr("http-addr", "127.0.0.1:8080", "broker HTTP listen address")
	adminAddr := ports.addr("admin-addr", "127.0.0.1:8089", "simulators' admin route (faults, fresh codes)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ports.resolve()
	fail := func(err error) int { fmt.Fprintf(stderr, "broker sandbox: %v\n", inUseHint(err)); return 1 }

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
	sims, err := sim.StartSet(ctx, sim.SetOptions{AdminAddr: *adminAddr, User: demoUser, Skills: sandboxSkills})
	if err != nil {
		return fail(err)
	}
	defer sims.Close()
	p := &printer{w: stdout}
	if err := applyFaults(p, sims, *faults); err != nil {
		return fail(err)
	}

	env, err := sims.SkillsEnv(dir)
	if err != nil {
		return fail(err)
	}
	env["BROKER_GRPC_ADDR"], env["BROKER_HTTP_ADDR"] = *grpcAddr, *httpAddr
	env["BROKER_STORE"] = "bolt:" + filepath.Join(dir, "broker.db")
	env["BROKER_ENCRYPTION_KEY"] = key
	env["BROKER_CONSOLE_CLIENT_ID"] = consoleClient
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
	m.AlexaRegions = sims.Alexa.RegionURLs() // the simulator records the region it served
	if err := m.Run(ctx); err != nil {
		m.Close()
		return fail(err)
	}
	defer m.Close()
	consoleURL, err := registerConsole(sims.Auth, m.Server.HTTPAddr())
	if err != nil {
		return fail(err)
	}

	where := dir + " (removed at exit)"
	if !temporary {
		where = dir
	}
	p.line("Reciprocal token broker — sandbox")
	p.line("  data       %s", where)
	p.line("  broker     gRPC %s · HTTP http://%s · logs %s", m.Server.GRPCAddr(), m.Server.HTTPAddr(), logPath)
	p.line("  console    %s (sign in as anyone; untick %s to see it refused)", consoleURL, c.ScopeAdmin)
	p.line("  simulated  LWA %s · Alexa API %s (Health API and Event Gateway; regions below /na /eu /fe)", sims.LWA.TokenURL(), sims.Alexa.URL())
	p.line("             partner authorization server %s (JWKS %s)", sims.Auth.Issuer(), sims.Auth.JWKSURL())
	p.line("             companion backend's webhook receiver %s", sims.Webhooks.URL())
	printSkills(p, sims, env["BROKER_SKILLS_FILE"])
	p.line("")

	tok := newDevTokens(sims.Auth)
	st := &story{p: p, sims: sims, tok: tok, base: "http://" + m.Server.HTTPAddr(), client: &http.Client{Timeout: 10 * time.Second}}
	storyCtx, cancel := context.WithTimeout(ctx, storyTimeout)
	if err := st.play(storyCtx); err != nil {
		p.line("(the broker keeps serving; its log is %s)", logPath)
		p.line("")
	}
	st.webhooks(storyCtx)
	cancel()
	p.line("")
	printTryIt(p, m.Server.GRPCAddr(), "http://"+m.Server.HTTPAddr(), sims.AdminURL(), tok)
	p.line("")
	p.line("Serving. Ctrl-C stops the broker and the simulators.")
	<-ctx.Done()
	p.line("stopping")
	return 0
}

// consoleClient is the operator console's public client at the simulated
// authorization server.
const consoleClient = "broker-console"

// registerConsole registers the console of the broker listening on httpAddr
// at the simulated authorization server, reached at its address and, on the
// loopback interface, at localhost, and returns its URL.
func registerConsole(auth *sim.AuthServer, httpAddr string) (string, error) {
	consoleURL := "http://" + httpAddr + console.Path
	redirects := []string{consoleURL}
	if host, port, err := net.SplitHostPort(httpAddr); err == nil && net.ParseIP(host).IsLoopback() {
		redirects = append(redirects, "http://"+net.JoinHostPort("localhost", port)+console.Path)
	}
	return consoleURL, auth.AddPublicClient(consoleClient, redirects...)
}

// printSkills prints the skills the simulators serve, with the client ids
// they go by, and the skills file that describes them to the broker.
func printSkills(p *printer, sims *sim.Set, file string) {
	kinds := map[string]string{babySkill: "baby activity: Alexa's reciprocal hand-over", homeSkill: "smart home: AcceptGrant through the skill's Lambda"}
	for i, sk := range sims.Skills() {
		label := ""
		if i == 0 {
			label = "skills"
		}
		p.line("  %-9s  %s  Alexa client id %s · LWA client id %s · region %s · %s", label, sk.ID, sk.AlexaClientID, sk.LWAClientID, sk.Region, kinds[sk.ID])
	}
	p.line("             skills file %s (BROKER_SKILLS_FILE; each LWA secret in a file beside it)", file)
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
