package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSandbox runs the README's first command as a newcomer would: the built
// binary, a fresh temporary folder, an empty environment. Both skills' stories
// must end within 30 s, the baby skill's report delivered to the Health API and
// the home skill's ChangeReport to the Event Gateway of its region, and the
// printed curl commands must work.
func TestSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	printed := runSandbox(t)
	out := strings.Join(printed, "\n")
	if strings.Contains(out, "✗") {
		t.Fatalf("a story stopped:\n%s", out)
	}
	for _, want := range []string{
		"baby  Alexa client id alexa-baby", "home  Alexa client id alexa-home", // both skills
		"  console    http://127.0.0.1:", // the operator console, signed in at the simulated server
		"link.linked for demo-parent", "in skill baby", "in skill home", "signature verified, answered 204",
		"with profiles [baby-7f3c] in region NA",
		`"name":"AcceptGrant.Response"`,
		"link LINKED in region EU",
		"without scope → 202 PENDING",
		"for endpoint thermostat-livingroom in region EU,",
		"with demo-parent's LWA access token of the skill in endpoint.scope",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the sandbox did not print %q:\n%s", want, out)
		}
	}
	for _, kind := range []string{"report", "event"} {
		if !regexp.MustCompile(`(?m)^\d\. Broker: ` + kind + ` \S+ DELIVERED`).MatchString(out) {
			t.Errorf("the story did not show the %s DELIVERED:\n%s", kind, out)
		}
	}
	for _, secret := range []string{"Atza|", "Atzr|"} {
		if strings.Contains(out, secret) {
			t.Errorf("the sandbox printed an LWA token")
		}
	}

	// Run the printed exports and printed curl commands, as a reader would.
	var exports []string
	for _, l := range printed {
		if strings.HasPrefix(l, "  export ") {
			exports = append(exports, strings.TrimSpace(l))
		}
	}
	if len(exports) < 7 {
		t.Fatalf("the sandbox printed no exports:\n%s", out)
	}
	for _, tc := range []struct {
		name, command string
		want          []string
	}{
		{"BabyLink", `curl -s "$BROKER/v1/links/demo-parent?skill_id=baby"`, []string{`"state":"LINKED"`, `"user_id":"demo-parent"`, `"skill_id":"baby"`, `"region":"NA"`}},
		{"HomeLink", `curl -s "$BROKER/v1/links/demo-parent?skill_id=home"`, []string{`"state":"LINKED"`, `"skill_id":"home"`, `"region":"EU"`}},
		{"AcceptGrant", `curl -s -X POST "$BROKER/v1/smart-home/accept-grant?skill_id=home"`, []string{`"name":"AcceptGrant.Response"`}},
		{"AlexaEvent", `curl -s -X POST "$BROKER/v1/alexa-events"`, []string{`"state":"PENDING"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := runPrinted(t, printed, exports, tc.command)
			for _, want := range tc.want {
				if !strings.Contains(got, want) {
					t.Errorf("printed %s answered %s, want %s", tc.command, got, want)
				}
			}
		})
	}
}

// runPrinted runs the printed line that starts with command, after exports,
// in a shell with an empty environment, and returns what it wrote.
func runPrinted(t *testing.T, printed, exports []string, command string) string {
	t.Helper()
	var line string
	for _, l := range printed {
		if strings.HasPrefix(strings.TrimSpace(l), command) {
			line = strings.TrimSpace(l)
			break
		}
	}
	if line == "" {
		t.Fatalf("the sandbox printed no command %s", command)
	}
	sh := exec.Command("sh", "-c", strings.Join(append(exports, line), "\n"))
	sh.Env = []string{"PATH=" + os.Getenv("PATH")}
	got, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("printed command failed: %v\n%s", err, got)
	}
	return string(got)
}

// TestSandbox_Fault403: with --fault alexa:403 the report fails, the baby
// link needs re-linking, and the story shows the companion backend told so;
// the home skill's story still ends with its event delivered.
func TestSandbox_Fault403(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out := strings.Join(runSandbox(t, "--fault", "alexa:403"), "\n")
	for _, want := range []string{
		"link.linked for demo-parent",
		`link.relink_required for demo-parent {"reason":"alexa_forbidden"} in skill baby`,
		"link of demo-parent in baby: RELINK_REQUIRED",
		"for endpoint thermostat-livingroom in region EU,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the story did not print %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NOT verified") {
		t.Errorf("a webhook's signature did not verify:\n%s", out)
	}
}

// TestSandbox_FaultEvents403: with --fault alexa-events:403 the Event Gateway
// refuses the ChangeReport: the event is FAILED, the home link needs
// re-linking and the companion backend is told; the baby skill's report is
// delivered all the same.
func TestSandbox_FaultEvents403(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out := strings.Join(runSandbox(t, "--fault", "alexa-events:403"), "\n")
	for _, want := range []string{
		"fault on: the Alexa Event Gateway answers 403",
		`"name":"AcceptGrant.Response"`,
		"link of demo-parent in home: RELINK_REQUIRED",
		`link.relink_required for demo-parent {"reason":"alexa_forbidden"} in skill home`,
		"with profiles [baby-7f3c] in region NA",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the story did not print %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^5\. Broker: event \S+ FAILED after 1 attempt\(s\)`).MatchString(out) {
		t.Errorf("the story did not show the event FAILED:\n%s", out)
	}
	if strings.Contains(out, "NOT verified") || strings.Contains(out, "in endpoint.scope") {
		t.Errorf("a webhook did not verify, or the gateway took the event:\n%s", out)
	}
}

// runSandbox builds the binary and runs `broker sandbox` with extra flags in a
// fresh folder with an empty environment, stopped by the test; it returns the
// lines printed until "Serving.".
func runSandbox(t *testing.T, extra ...string) []string {
	t.Helper()
	bin := buildBroker(t)
	dir := filepath.Dir(bin)
	args := append([]string{"sandbox", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, []string{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
		}
	})

	var mu sync.Mutex
	var lines []string
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "Serving.") {
				once.Do(func() { close(serving) })
			}
		}
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	select {
	case <-serving:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the sandbox did not finish its story within 30s:\n%s", strings.Join(lines, "\n"))
	}
	mu.Lock()
	printed := append([]string(nil), lines...)
	mu.Unlock()
	return printed
}

// buildBroker builds the broker binary into a temp folder of its own and
// returns its path.
func buildBroker(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "broker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
