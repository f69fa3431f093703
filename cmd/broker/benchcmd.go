package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/bench"
)

// The scenarios of broker bench.
const (
	scenarioPartnerToken  = "partner-token"
	scenarioProfileReport = "profile-report"
	scenarioAlexaEvent    = "alexa-event"
)

// benchScenarios are the scenarios' names, in the order usage lists them.
var benchScenarios = []string{scenarioPartnerToken, scenarioProfileReport, scenarioAlexaEvent}

// benchConfig is what the flags of broker bench say.
type benchConfig struct {
	url, grpcAddr       string
	plaintext, insecure bool
	token               string
	user, skillID       string
	scenario            string
	endpointID          string
	opts                bench.Options
}

// benchCommand runs `broker bench`: a load test of a running broker through
// its public API, as a partner runs it against their own deployment.
func benchCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, code, ok := parseBenchFlags(args, getenv, stdout, stderr)
	if !ok {
		return code
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "broker bench: %v\n", err); return 1 }

	var (
		req    bench.Request
		target string
	)
	if c.grpcAddr != "" {
		conn, err := dialBroker(c.grpcAddr, c.plaintext, c.insecure)
		if err != nil {
			return fail(err)
		}
		defer conn.Close()
		req, target = grpcBenchRequest(c, conn), "gRPC "+c.grpcAddr
	} else {
		client := &http.Client{Transport: benchTransport(c)}
		defer client.CloseIdleConnections()
		req, target = httpBenchRequest(c, client), "HTTP "+c.url
	}
	how := fmt.Sprintf("for %v", c.opts.Duration)
	if c.opts.Requests > 0 {
		how = fmt.Sprintf("%d requests", c.opts.Requests)
		if c.opts.Duration > 0 {
			how += fmt.Sprintf(" or %v", c.opts.Duration)
		}
	}
	fmt.Fprintf(stdout, "broker bench: %s of user %q over %s, %d callers, %s\n", c.scenario, c.user, target, c.opts.Concurrency, how)

	// One request first: a wrong token, user or address stops here, with
	// the broker's answer, instead of failing every request of the run.
	wctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	out := req(wctx, 0)
	cancel()
	if !out.OK {
		return fail(fmt.Errorf("the first request failed, nothing measured: %s %s", out.Status, out.Detail))
	}
	s, err := bench.Run(ctx, c.opts, func(ctx context.Context, i uint64) bench.Outcome { return req(ctx, i+1) })
	if err != nil {
		return fail(err)
	}
	if err := s.Write(stdout); err != nil {
		return fail(err)
	}
	if s.Errors > 0 || s.Interrupted {
		return 1
	}
	return 0
}

// parseBenchFlags reads the flags of broker bench. It reports false, with the
// exit code, when the command stops here: 0 after --help, 2 after a bad flag,
// which it names on stderr.
func parseBenchFlags(args []string, getenv func(string) string, stdout, stderr io.Writer) (benchConfig, int, bool) {
	var c benchConfig
	fs := flag.NewFlagSet("broker bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "the broker's HTTP base URL (http or https)")
	fs.StringVar(&c.grpcAddr, "grpc-addr", "", "benchmark over gRPC at this HOST:PORT instead of HTTP")
	fs.BoolVar(&c.plaintext, "plaintext", false, "gRPC without TLS (HTTP follows the URL's scheme)")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fs.StringVar(&c.token, "token", "", "the partner's bearer JWT, with the scenario's scope (default $BROKER_TOKEN; never printed)")
	fs.StringVar(&c.user, "user", "", "the user the requests name: a linked test user (required)")
	fs.StringVar(&c.skillID, "skill-id", "", "the skill of the user's link (may be left out for a broker of one skill)")
	fs.StringVar(&c.scenario, "scenario", scenarioPartnerToken, "what to ask for: "+strings.Join(benchScenarios, ", "))
	fs.StringVar(&c.endpointID, "endpoint-id", "broker-bench", "alexa-event: the endpointId of the ChangeReports")
	fs.IntVar(&c.opts.Concurrency, "concurrency", 16, "callers at once, each sending its next request when the last is answered")
	fs.DurationVar(&c.opts.Duration, "duration", 10*time.Second, "how long to send requests (0: until --requests)")
	fs.Uint64Var(&c.opts.Requests, "requests", 0, "stop after this many requests (0: no limit)")
	fs.DurationVar(&c.opts.Timeout, "timeout", 10*time.Second, "the longest a request may take")
	printUsage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprint(w, `Usage: broker bench --user ID [flags]

Load-tests a running broker through its public API, as the companion backend
calls it, and prints the requests, the errors by status, the throughput and
the latency percentiles. Exits 1 when a request failed or the run was
interrupted, 2 for a bad flag.

Scenarios (each needs a token with the scope named):
  partner-token   POST /v1/partner-token, GetPartnerToken (broker:tokens)
  profile-report  POST /v1/profile-reports, SubmitProfileReport, a new
                  message_id each time (broker:profiles). Each report is
                  delivered to the Alexa Health API and replaces the user's
                  profiles there: use a test user.
  alexa-event     POST /v1/alexa-events, SubmitAlexaEvent: a ChangeReport of
                  --endpoint-id, a new messageId each time (broker:events);
                  each is delivered to the Alexa Event Gateway.

Flags:
`)
		fs.PrintDefaults()
	}
	// A bad flag is named on stderr, without the whole usage.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return c, 0, false
		}
		fmt.Fprintln(stderr, "(broker bench --help lists the flags)")
		return c, 2, false
	}
	usageError := func(format string, args ...any) (benchConfig, int, bool) {
		fmt.Fprintf(stderr, "broker bench: "+format+" (broker bench --help)\n", args...)
		return c, 2, false
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if c.token == "" {
		c.token = getenv(envToken)
	}
	switch {
	case c.token == "":
		return usageError("--token or " + envToken + " is required")
	case bearerProblem(c.token) != "":
		return usageError("%s", bearerProblem(c.token))
	case c.user == "":
		return usageError("--user is required")
	case !slices.Contains(benchScenarios, c.scenario):
		return usageError("--scenario %q: want one of %s", c.scenario, strings.Join(benchScenarios, ", "))
	case c.opts.Concurrency < 1:
		return usageError("--concurrency %d: want at least 1", c.opts.Concurrency)
	case c.opts.Duration < 0:
		return usageError("--duration %v: want 0 or more", c.opts.Duration)
	case c.opts.Duration == 0 && c.opts.Requests == 0:
		return usageError("--duration 0 needs --requests")
	case c.opts.Timeout <= 0:
		return usageError("--timeout %v: want more than 0", c.opts.Timeout)
	case set["url"] && set["grpc-addr"]:
		return usageError("--url and --grpc-addr: give one")
	case c.grpcAddr == "" && c.plaintext:
		return usageError("--plaintext is for --grpc-addr")
	}
	if c.grpcAddr == "" {
		u, err := url.Parse(c.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return usageError("--url %q: want http(s)://HOST[:PORT][/PATH]", c.url)
		}
		c.url = strings.TrimSuffix(u.String(), "/")
	}
	return c, 0, true
}

// benchTransport is the HTTP transport of a run: a kept-alive connection per
// caller, the certificate checked unless --insecure.
func benchTransport(c benchConfig) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = c.opts.Concurrency
	t.MaxIdleConnsPerHost = c.opts.Concurrency
	if c.insecure {
		// The operator's choice, for a deployment with a test certificate.
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return t
}

// benchMessageIDs returns a function giving request i's message id, unique
// across runs: "bench-" and a random prefix of this run, then i.
func benchMessageIDs() func(i uint64) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "bench-" + hex.EncodeToString(b) + "-"
	return func(i uint64) string { return prefix + strconv.FormatUint(i, 10) }
}

// benchProfiles is the report of the profile-report scenario: one profile
// that the Alexa Health API takes.
func benchProfiles() []map[string]any {
	return []map[string]any{{
		"profileId": "broker-bench",
		"name":      map[string]any{"firstName": "Bench", "lastName": "", "nickNames": []string{"Bench"}},
		"capabilities": []map[string]any{{
			"name": "Alexa.Health.Sleep", "type": "AlexaInterface", "version": "1",
			"supportedOperations": []string{"Get", "Start", "Stop"},
		}},
	}}
}

// benchAlexaEvent is the Alexa event of the alexa-event scenario: a
// ChangeReport of endpoint's connectivity, with messageID.
func benchAlexaEvent(endpoint, messageID string, now time.Time) map[string]any {
	return map[string]any{
		"header":   map[string]any{"namespace": "Alexa", "name": "ChangeReport", "messageId": messageID, "payloadVersion": "3"},
		"endpoint": map[string]any{"endpointId": endpoint},
		"payload": map[string]any{"change": map[string]any{
			"cause": map[string]any{"type": "PHYSICAL_INTERACTION"},
			"properties": []any{map[string]any{
				"namespace": "Alexa.EndpointHealth", "name": "connectivity", "value": map[string]any{"value": "OK"},
				"timeOfSample": now.UTC().Format(time.RFC3339), "uncertaintyInMilliseconds": 0,
			}},
		}},
	}
}

// httpBenchRequest returns the scenario's request over the HTTP gateway.
func httpBenchRequest(c benchConfig, client *http.Client) bench.Request {
	ids := benchMessageIDs()
	var path string
	var body func(i uint64) []byte
	switch c.scenario {
	case scenarioPartnerToken:
		path = "/v1/partner-token"
		b, _ := json.Marshal(map[string]string{"user_id": c.user, "skill_id": c.skillID})
		body = func(uint64) []byte { return b }
	case scenarioProfileReport:
		path = "/v1/profile-reports"
		profiles := benchProfiles()
		body = func(i uint64) []byte {
			b, _ := json.Marshal(map[string]any{"user_id": c.user, "skill_id": c.skillID, "message_id": ids(i), "profiles": profiles})
			return b
		}
	case scenarioAlexaEvent:
		path = "/v1/alexa-events"
		body = func(i uint64) []byte {
			b, _ := json.Marshal(map[string]any{"user_id": c.user, "skill_id": c.skillID, "event": benchAlexaEvent(c.endpointID, ids(i), time.Now())})
			return b
		}
	}
	endpoint, bearer := c.url+path, "Bearer "+c.token
	return func(ctx context.Context, i uint64) bench.Outcome {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body(i)))
		if err != nil {
			return bench.Outcome{Status: "transport", Detail: err.Error()}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", bearer)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return bench.Outcome{Status: "timeout", Detail: ctx.Err().Error()}
			}
			return bench.Outcome{Status: "transport", Detail: err.Error()}
		}
		defer resp.Body.Close()
		ok := resp.StatusCode >= 200 && resp.StatusCode < 300
		out := bench.Outcome{OK: ok, Status: strconv.Itoa(resp.StatusCode)}
		if ok {
			_, _ = io.Copy(io.Discard, resp.Body) // so that the connection is kept
		} else {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			out.Detail = string(b)
		}
		return out
	}
}

// grpcBenchRequest returns the scenario's request over gRPC.
func grpcBenchRequest(c benchConfig, conn *grpc.ClientConn) bench.Request {
	md := metadata.Pairs("authorization", "Bearer "+c.token)
	ids := benchMessageIDs()
	var call func(ctx context.Context, i uint64) error
	switch c.scenario {
	case scenarioPartnerToken:
		client := brokerv1.NewPartnerTokenServiceClient(conn)
		req := &brokerv1.GetPartnerTokenRequest{UserId: c.user, SkillId: c.skillID}
		call = func(ctx context.Context, _ uint64) error {
			_, err := client.GetPartnerToken(ctx, req)
			return err
		}
	case scenarioProfileReport:
		client := brokerv1.NewProfileReportServiceClient(conn)
		call = func(ctx context.Context, i uint64) error {
			_, err := client.SubmitProfileReport(ctx, &brokerv1.SubmitProfileReportRequest{
				UserId: c.user, SkillId: c.skillID, MessageId: ids(i),
				Profiles: []*brokerv1.Profile{{
					ProfileId: "broker-bench",
					Name:      &brokerv1.ProfileName{FirstName: "Bench", NickNames: []string{"Bench"}},
					Capabilities: []*brokerv1.Capability{{
						Name: "Alexa.Health.Sleep", Type: "AlexaInterface", Version: "1",
						SupportedOperations: []string{"Get", "Start", "Stop"},
					}},
				}},
			})
			return err
		}
	case scenarioAlexaEvent:
		client := brokerv1.NewAlexaEventServiceClient(conn)
		call = func(ctx context.Context, i uint64) error {
			event, err := structpb.NewStruct(benchAlexaEvent(c.endpointID, ids(i), time.Now()))
			if err != nil {
				return status.Error(codes.Internal, "bench: "+err.Error())
			}
			_, err = client.SubmitAlexaEvent(ctx, &brokerv1.SubmitAlexaEventRequest{UserId: c.user, SkillId: c.skillID, Event: event})
			return err
		}
	}
	return func(ctx context.Context, i uint64) bench.Outcome {
		err := call(metadata.NewOutgoingContext(ctx, md), i)
		s := status.Convert(err)
		if s.Code() == codes.OK {
			return bench.Outcome{OK: true, Status: "OK"}
		}
		return bench.Outcome{Status: s.Code().String(), Detail: s.Message()}
	}
}
