package main

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSandbox_PortsAuto: two sandboxes with --ports auto run at once, each on
// ports of its own, which each prints.
func TestSandbox_PortsAuto(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two sandboxes")
	}
	// The first keeps serving while the second starts.
	first, second := startSandbox(t), startSandbox(t)
	brokerLine := regexp.MustCompile(`broker     gRPC (127\.0\.0\.1:\d+) · HTTP http://(127\.0\.0\.1:\d+)`)
	seen := map[string]bool{}
	for _, sb := range []*sandboxRun{first, second} {
		out := strings.Join(sb.printed, "\n")
		m := brokerLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the sandbox did not print its addresses:\n%s", out)
		}
		for _, addr := range m[1:] {
			if strings.HasSuffix(addr, ":9090") || strings.HasSuffix(addr, ":8080") || seen[addr] {
				t.Errorf("address %s is a fixed one or the other sandbox's", addr)
			}
			seen[addr] = true
		}
		if strings.Contains(out, "✗") {
			t.Errorf("a story stopped:\n%s", out)
		}
	}
}

// TestSandbox_PortInUse: a listen address already in use stops the sandbox
// and simulate with a hint at --ports auto; a bad --ports value is a usage
// error.
func TestSandbox_PortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().String()
	for _, tc := range []struct {
		name     string
		command  func(context.Context, []string, *syncBuffer) int
		args     []string
		wantCode int
		want     string
	}{
		{"Sandbox", runSandboxCmd, []string{"--ports", "auto", "--http-addr", busy}, 1, "--ports auto picks free ports"},
		{"Simulate", runSimulateCmd, []string{"--ports", "auto", "--lwa-addr", busy}, 1, "--ports auto picks free ports"},
		{"BadPorts", runSandboxCmd, []string{"--ports", "random"}, 2, `want fixed or auto, not "random"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var out syncBuffer
			if code := tc.command(ctx, append(tc.args, "--data", t.TempDir()), &out); code != tc.wantCode {
				t.Errorf("exit code %d, want %d:\n%s", code, tc.wantCode, out.String())
			}
			if !strings.Contains(out.String(), tc.want) || !strings.Contains(out.String(), busy) && tc.wantCode == 1 {
				t.Errorf("output does not name %s and say %q:\n%s", busy, tc.want, out.String())
			}
		})
	}
}

// TestSandbox_SimulatePortsAuto: two `broker simulate --ports auto` run at
// once, and print settings that name their own simulators.
func TestSandbox_SimulatePortsAuto(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var outs [2]syncBuffer
	exited := make(chan int, 2)
	for i := range outs {
		go func() { exited <- runSimulateCmd(ctx, []string{"--ports", "auto", "--data", t.TempDir()}, &outs[i]) }()
	}
	defer func() {
		cancel()
		for range outs {
			<-exited
		}
	}()
	tokenURL := regexp.MustCompile(`export BROKER_LWA_TOKEN_URL='(http://127\.0\.0\.1:\d+)/`)
	var urls [2]string
	for i := range outs {
		waitFor(t, 30*time.Second, "simulate's settings", func() bool { return strings.Contains(outs[i].String(), "Ctrl-C stops the simulators.") })
		m := tokenURL.FindStringSubmatch(outs[i].String())
		if m == nil {
			t.Fatalf("simulate printed no BROKER_LWA_TOKEN_URL:\n%s", outs[i].String())
		}
		urls[i] = m[1]
	}
	if urls[0] == urls[1] || strings.HasSuffix(urls[0], ":9301") || strings.HasSuffix(urls[1], ":9301") {
		t.Errorf("LWA simulators at %s and %s, want two free ports", urls[0], urls[1])
	}
}

// runSandboxCmd runs `broker sandbox` with args, its output and errors to out.
func runSandboxCmd(ctx context.Context, args []string, out *syncBuffer) int {
	return sandbox(ctx, args, out, out)
}

// runSimulateCmd runs `broker simulate` with args, its output and errors to out.
func runSimulateCmd(ctx context.Context, args []string, out *syncBuffer) int {
	return simulate(ctx, args, out, out)
}
