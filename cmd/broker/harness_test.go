package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
)

// alexaClient is the client id the partner issued to Alexa in these tests.
const alexaClient = sim.DefaultAlexaClientID

// harness is one real broker, booted through Main on free loopback ports in a
// temp dir, wired to the simulators of a sim.Set that share the harness's clock.
type harness struct {
	tb     testing.TB
	clock  *sim.Clock
	sims   *sim.Set
	main   *Main
	config config.Config
	logs   *syncBuffer
	dbPath string
	conn   *grpc.ClientConn
	base   string // http://host:port of the gateway
	// backgroundInterval, when set before start, is the broker's
	// BackgroundRefreshInterval.
	backgroundInterval time.Duration
}

// newHarness starts the simulators and the broker; everything stops when the
// test ends.
func newHarness(tb testing.TB) *harness {
	tb.Helper()
	return newHarnessWith(tb, sim.SetOptions{}, nil)
}

// newHarnessWith is newHarness with simulators started by opts (its clock is
// the harness's) and settings that replace the defaults, such as another store.
// With opts.KMS the broker seals with the KMS simulator's key; with
// opts.Skills it serves those skills, from the skills file of
// sim.Set.SkillsEnv.
func newHarnessWith(tb testing.TB, opts sim.SetOptions, settings map[string]string) *harness {
	tb.Helper()
	h := newSimHarness(tb, opts)
	env := h.sims.BrokerEnv()
	if len(opts.Skills) > 0 {
		env = h.skillsEnv()
	}
	maps.Copy(env, settings)
	h.configure(env)
	h.start()
	return h
}

// newSimHarness starts the simulators of opts on the harness's clock and
// returns the harness without a broker: configure and start boot one.
func newSimHarness(tb testing.TB, opts sim.SetOptions) *harness {
	tb.Helper()
	h := &harness{tb: tb, clock: sim.NewClock(time.Now()), logs: &syncBuffer{}}
	opts.Now = h.clock.Now
	sims, err := sim.StartSet(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sims.Close() })
	h.sims = sims
	h.dbPath = filepath.Join(tb.TempDir(), "broker.db")
	return h
}

// skillsEnv returns the settings of a broker of the skills of the
// simulators' SetOptions.Skills, their skills file written in a temp dir.
func (h *harness) skillsEnv() map[string]string {
	h.tb.Helper()
	env, err := h.sims.SkillsEnv(h.tb.TempDir())
	if err != nil {
		h.tb.Fatal(err)
	}
	return env
}

// configure sets the configuration the next start boots: loopback ports, the
// harness's store file, the tests' sealing key and debug logs, replaced by
// settings.
func (h *harness) configure(settings map[string]string) {
	h.tb.Helper()
	env := map[string]string{
		"BROKER_GRPC_ADDR":      "127.0.0.1:0",
		"BROKER_HTTP_ADDR":      "127.0.0.1:0",
		"BROKER_STORE":          "bolt:" + h.dbPath,
		"BROKER_ENCRYPTION_KEY": testKey,
		"BROKER_LOG_LEVEL":      "debug",
	}
	maps.Copy(env, settings)
	c, err := config.Parse(nil, func(k string) string { return env[k] })
	if err != nil {
		h.tb.Fatal(err)
	}
	h.config = c
}

// startLWA starts an LWA simulator alone, on the clock now (nil: time.Now),
// for tests of the token service without the broker around it.
func startLWA(tb testing.TB, now func() time.Time) *sim.LWA {
	tb.Helper()
	l := sim.NewLWA(sim.LWAOptions{Now: now})
	if err := l.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// fakeAWSEnv points the AWS SDK's default configuration at a region and
// made-up credentials, as an operator's environment would, and away from any
// real files and instance role; dynalite and the KMS simulator check no
// signatures.
func fakeAWSEnv(tb testing.TB) {
	tb.Helper()
	tb.Setenv("AWS_REGION", dynamotest.Region)
	tb.Setenv("AWS_ACCESS_KEY_ID", "AKIDSIMULATOR")
	tb.Setenv("AWS_SECRET_ACCESS_KEY", "simulator-secret")
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tb.Setenv("AWS_CONFIG_FILE", filepath.Join(tb.TempDir(), "none"))
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(tb.TempDir(), "none"))
}

// start boots a broker on h's configuration and store file.
func (h *harness) start() {
	h.tb.Helper()
	h.main = NewMain()
	h.main.Config, h.main.Stdout, h.main.Now = h.config, h.logs, h.clock.Now
	h.main.ReportPollInterval, h.main.ReportMinBackoff = 20*time.Millisecond, time.Second
	h.main.BackgroundRefreshInterval = h.backgroundInterval
	h.main.WebhookPollInterval, h.main.WebhookMinBackoff = 20*time.Millisecond, 200*time.Millisecond
	if _, ok := h.tb.(*testing.B); ok {
		// Logs are written to a file, as a process's stdout would be, and not
		// kept.
		f, err := os.Create(filepath.Join(h.tb.TempDir(), "broker.log"))
		if err != nil {
			h.tb.Fatal(err)
		}
		h.tb.Cleanup(func() { f.Close() })
		h.main.Stdout = f
		h.main.Config.LogLevel = "info"
		h.main.WebhookPollInterval = 0 // production's: benchmarks measure what runs
	}
	if err := h.main.Run(context.Background()); err != nil {
		h.tb.Fatal(err)
	}
	m := h.main
	h.tb.Cleanup(func() { m.Close() })
	h.base = "http://" + h.main.Server.HTTPAddr()
	conn, err := grpc.NewClient(h.main.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		h.tb.Fatal(err)
	}
	h.conn = conn
	h.tb.Cleanup(func() { conn.Close() })
}

// restart stops the broker and boots a new one on the same store file, as a
// process restart would.
func (h *harness) restart() {
	h.tb.Helper()
	if err := h.main.Close(); err != nil {
		h.tb.Fatal(err)
	}
	h.conn.Close()
	h.start()
}

// clientToken is a companion-backend token with scopes, valid for an hour.
func (h *harness) clientToken(scopes ...string) string {
	return h.sims.Auth.ClientToken("companion-backend", scopes, time.Hour)
}

// userToken is the JWT the partner's authorization server issued Alexa for user.
func (h *harness) userToken(user string) string {
	return h.sims.Auth.UserToken(user, alexaClient, time.Hour)
}

// withBearer puts a bearer token in the outgoing gRPC metadata.
func withBearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// post sends Alexa's form to the reciprocal endpoint.
func (h *harness) authorize(form url.Values, header string) (int, string, http.Header) {
	h.tb.Helper()
	req, err := http.NewRequest("POST", h.base+"/api/reciprocal/authorize", strings.NewReader(form.Encode()))
	if err != nil {
		h.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if header != "" {
		req.Header.Set("Authorization", header)
	}
	return h.do(req)
}

// do sends req and returns the status, body and headers of the answer.
func (h *harness) do(req *http.Request) (int, string, http.Header) {
	h.tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.tb.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// call sends a JSON request to the gateway with a bearer token.
func (h *harness) call(method, path, token, body string) (int, string) {
	h.tb.Helper()
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		h.tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	status, b, _ := h.do(req)
	return status, b
}

// link runs Alexa's hand-over for user and fails the test unless it succeeds.
func (h *harness) link(user string) {
	h.tb.Helper()
	form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor(user)}, "client_id": {alexaClient}}
	if status, body, _ := h.authorize(form, "Bearer "+h.userToken(user)); status != http.StatusOK || body != "{}" {
		h.tb.Fatalf("hand-over of %s: %d %s", user, status, body)
	}
}

// in returns h reporting to tb, a subtest, so that its helpers fail the
// subtest rather than its parent. The broker and simulators are h's.
func (h *harness) in(tb testing.TB) *harness {
	c := *h
	c.tb = tb
	return &c
}
