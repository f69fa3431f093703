package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// runBench runs `broker bench` with args and BROKER_TOKEN set to token, and
// returns its exit code, stdout and stderr.
func runBench(t *testing.T, token string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := map[string]string{"BROKER_TOKEN": token}
	code := run(t.Context(), append([]string{"bench"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	if token != "" && strings.Contains(stdout.String()+stderr.String(), token) {
		t.Errorf("broker bench printed the token:\n%s%s", stdout.String(), stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

func TestBenchCommand(t *testing.T) {
	h := newHarness(t)
	const user = "bench-user"
	h.link(user)
	scopes := map[string]string{
		scenarioPartnerToken:  "broker:tokens",
		scenarioProfileReport: "broker:profiles",
		scenarioAlexaEvent:    "broker:events",
	}
	grpcAddr := h.main.Server.GRPCAddr()
	tests := []struct {
		name, scenario string
		args           []string
		summary        []string // regular expressions the summary must match
	}{
		{"partner tokens over HTTP", scenarioPartnerToken, []string{"--url", h.base, "--requests", "40", "--duration", "0"},
			[]string{`over HTTP http://127\.0\.0\.1:\d+, 4 callers, 40 requests\n`, `\nrequests     40 in [0-9.]+[µm]?s, 4 callers: [0-9.]+/s\n`, `\nok           40 \(200: 40\)\n`}},
		{"profile reports over HTTP", scenarioProfileReport, []string{"--url", h.base + "/", "--requests", "40"},
			[]string{`\nrequests     40 in `, `\nok           40 \(202: 40\)\n`}},
		{"Alexa events over HTTP", scenarioAlexaEvent, []string{"--url", h.base, "--requests", "40", "--endpoint-id", "lamp-1"},
			[]string{`\nrequests     40 in `, `\nok           40 \(2\d\d: 40\)\n`}},
		{"partner tokens over gRPC", scenarioPartnerToken, []string{"--grpc-addr", grpcAddr, "--plaintext", "--requests", "40"},
			[]string{`over gRPC 127\.0\.0\.1:\d+, 4 callers, 40 requests or 10s\n`, `\nok           40 \(OK: 40\)\n`}},
		{"profile reports over gRPC", scenarioProfileReport, []string{"--grpc-addr", grpcAddr, "--plaintext", "--requests", "40"},
			[]string{`\nok           40 \(OK: 40\)\n`}},
		{"Alexa events over gRPC", scenarioAlexaEvent, []string{"--grpc-addr", grpcAddr, "--plaintext", "--requests", "40"},
			[]string{`\nok           40 \(OK: 40\)\n`}},
		{"for a duration", scenarioPartnerToken, []string{"--url", h.base, "--duration", "200ms"},
			[]string{`, 4 callers, for 200ms\n`, `\nrequests     [1-9]\d* in 2\d\d\.?\d*ms, 4 callers: `}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--user", user, "--scenario", tt.scenario, "--concurrency", "4"}, tt.args...)
			code, stdout, stderr := runBench(t, h.clientToken(scopes[tt.scenario]), args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
			}
			want := append([]string{
				`^broker bench: ` + tt.scenario + ` of user "` + user + `" over `,
				`\nerrors       0\n`,
				`\nlatency      p50 [0-9.]+[µm]?s  p90 [0-9.]+[µm]?s  p99 [0-9.]+[µm]?s  max [0-9.]+[µm]?s\n$`,
			}, tt.summary...)
			for _, re := range want {
				if !regexp.MustCompile(re).MatchString(stdout) {
					t.Errorf("summary does not match %s:\n%s", re, stdout)
				}
			}
		})
	}

	t.Run("failures", func(t *testing.T) {
		tests := []struct {
			name, token string
			args        []string
			stderr      string
		}{
			{"token not accepted", "not-a-jwt", []string{"--url", h.base}, `the first request failed, nothing measured: 401 {"code":16,`},
			{"scope missing", h.clientToken("broker:profiles"), []string{"--url", h.base}, `: 403 {"code":7,`},
			{"user not linked", h.clientToken("broker:tokens"), []string{"--url", h.base, "--user", "nobody"}, `: 404 {"code":5,`},
			{"over gRPC", h.clientToken("broker:tokens"), []string{"--grpc-addr", grpcAddr, "--plaintext", "--user", "nobody"}, `: NotFound `},
			{"TLS to a plaintext server", h.clientToken("broker:tokens"), []string{"--grpc-addr", grpcAddr, "--timeout", "2s"}, `: Unavailable `},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				args := append([]string{"--user", user, "--requests", "10"}, tt.args...)
				code, _, stderr := runBench(t, tt.token, args...)
				if code != 1 || !strings.Contains(stderr, tt.stderr) {
					t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tt.stderr)
				}
			})
		}
	})
}

// flagToken is the token of the flag tests, never printed.
const flagToken = "flag-test-token"

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name, token string
		args        []string
		stderr      string // names the flag
	}{
		{"no token", "", []string{"--user", "u"}, "--token or BROKER_TOKEN is required"},
		{"token with Bearer", "Bearer " + flagToken, []string{"--user", "u"}, "--token: the bare JWT"},
		{"no user", flagToken, nil, "--user is required"},
		{"unknown scenario", flagToken, []string{"--user", "u", "--scenario", "links"}, `--scenario "links": want one of partner-token, profile-report, alexa-event`},
		{"no callers", flagToken, []string{"--user", "u", "--concurrency", "0"}, "--concurrency 0: want at least 1"},
		{"negative duration", flagToken, []string{"--user", "u", "--duration", "-1s"}, "--duration -1s"},
		{"no end", flagToken, []string{"--user", "u", "--duration", "0"}, "--duration 0 needs --requests"},
		{"no timeout", flagToken, []string{"--user", "u", "--timeout", "0"}, "--timeout 0s"},
		{"both transports", flagToken, []string{"--user", "u", "--url", "http://x", "--grpc-addr", "x:1"}, "--url and --grpc-addr: give one"},
		{"plaintext HTTP", flagToken, []string{"--user", "u", "--plaintext"}, "--plaintext is for --grpc-addr"},
		{"bad URL", flagToken, []string{"--user", "u", "--url", "127.0.0.1:8080"}, `--url "127.0.0.1:8080"`},
		{"URL with a query", flagToken, []string{"--user", "u", "--url", "http://x/?a=b"}, `--url "http://x/?a=b"`},
		{"not a number", flagToken, []string{"--user", "u", "--requests", "many"}, "-requests"},
		{"unknown flag", flagToken, []string{"--user", "u", "--rate", "5"}, "-rate"},
		{"argument", flagToken, []string{"--user", "u", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runBench(t, tt.token, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.stderr) || stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want 2 and %q", code, stderr, stdout, tt.stderr)
			}
		})
	}

	t.Run("help", func(t *testing.T) {
		code, stdout, stderr := runBench(t, "", "--help")
		if code != 0 || stderr != "" || !strings.Contains(stdout, "Usage: broker bench") || !strings.Contains(stdout, "-concurrency") {
			t.Errorf("exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
		}
	})
}
