package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSandbox runs the README's first command as a newcomer would: the built
// binary, a fresh temporary folder, an empty environment. The story must end
// with the report delivered within 30 s, and a printed curl command must work.
func TestSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	printed := runSandbox(t)
	out := strings.Join(printed, "\n")
	if !strings.Contains(out, "link.linked for demo-parent") || !strings.Contains(out, "signature verified, answered 204") {
		t.Errorf("the story did not show the companion backend told link.linked, signed:\n%s", out)
	}
	if !strings.Contains(out, "DELIVERED") || strings.Contains(out, "✗") {
		t.Fatalf("the story did not end with the report delivered:\n%s", out)
	}
	for _, secret := range []string{"Atza|", "Atzr|"} {
		if strings.Contains(out, secret) {
			t.Errorf("the sandbox printed an LWA token")
		}
	}

	// Run the printed exports and one printed curl command, as a reader would.
	var script []string
	for _, l := range printed {
		if strings.HasPrefix(l, "  export ") {
			script = append(script, strings.TrimSpace(l))
		}
		if strings.Contains(l, `curl -s "$BROKER/v1/links/demo-parent"`) {
			script = append(script, strings.TrimSpace(l))
		}
	}
	if len(script) < 6 {
		t.Fatalf("the sandbox printed no exports and link command:\n%s", out)
	}
	sh := exec.Command("sh", "-c", strings.Join(script, "\n"))
	sh.Env = []string{"PATH=" + os.Getenv("PATH")}
	got, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("printed command failed: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), `"state":"LINKED"`) || !strings.Contains(string(got), `"user_id":"demo-parent"`) {
		t.Errorf("printed curl answered %s, want demo-parent LINKED", got)
	}
}

// TestSandbox_Fault403: with --fault alexa:403 the report fails, the link
// needs re-linking, and the story shows the companion backend told so.
func TestSandbox_Fault403(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out := strings.Join(runSandbox(t, "--fault", "alexa:403"), "\n")
	for _, want := range []string{"link.linked for demo-parent", `link.relink_required for demo-parent {"reason":"alexa_forbidden"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("the story did not print %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NOT verified") {
		t.Errorf("a webhook's signature did not verify:\n%s", out)
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
