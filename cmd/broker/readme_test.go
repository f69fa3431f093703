package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADME runs every ```sh block of README.md as a newcomer pastes it: in
// bash, from the repository's root, after the export lines that a sandbox
// printed (with BROKER_ENCRYPTION_KEY, the sandbox's sealing key, for the
// block that rotates it), against that sandbox, started in this process on
// free ports.
//
// The rules, which the README states too:
//   - a block just after a <!-- not run: REASON --> comment is not run, and
//     the test says why;
//   - a block that calls .bin/grpcurl is skipped when scripts/tools.sh has
//     not built it; grpcurl is never called from PATH;
//   - each block runs on its own in bash -euo pipefail, so an unset variable
//     fails it, and curl fails on an HTTP error (--fail-with-body);
//   - a failure names the README line of the command that failed.
func TestREADME(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a sandbox and runs the README's commands")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, filepath.Join(root, "README.md"))
	runnable := 0
	for _, b := range blocks {
		if b.notRun == "" {
			runnable++
		}
	}
	if runnable < 5 {
		t.Fatalf("README.md has %d runnable sh blocks of %d, want at least 5: is the parser wrong?", runnable, len(blocks))
	}

	sb := startSandbox(t)
	key, err := os.ReadFile(filepath.Join(sb.dir, "sandbox.key"))
	if err != nil {
		t.Fatal(err)
	}
	header := append([]string{
		"set -euo pipefail",
		"export BROKER_ENCRYPTION_KEY='" + strings.TrimSpace(string(key)) + "'",
	}, sb.exports...)
	env := shellEnv(t, root)

	for _, b := range blocks {
		t.Run(fmt.Sprintf("Line%d", b.line), func(t *testing.T) {
			if b.notRun != "" {
				t.Skipf("README.md:%d: not run: %s", b.line, b.notRun)
			}
			if bareGrpcurl.MatchString(b.text) {
				t.Fatalf("README.md:%d: calls grpcurl from PATH; write .bin/grpcurl, which scripts/tools.sh builds", b.line)
			}
			if strings.Contains(b.text, ".bin/grpcurl") {
				if _, err := os.Stat(filepath.Join(root, ".bin", "grpcurl")); err != nil {
					t.Skipf("README.md:%d: .bin/grpcurl is missing (scripts/tools.sh grpcurl builds it)", b.line)
				}
			}
			out, err := runBlock(t, root, env, header, b)
			if err != nil {
				t.Errorf("README.md:%d: the block failed: %v\n%s", b.line, err, out)
			}
		})
	}
}

// bareGrpcurl finds grpcurl called as a command without its .bin/ path.
var bareGrpcurl = regexp.MustCompile(`(?m)(^|[\s;|&(])grpcurl\s`)

// readmeBlock is one ```sh block of the README.
type readmeBlock struct {
	line   int    // of the opening fence
	text   string // without the fences and the fence's indentation
	notRun string // the reason of a <!-- not run: … --> comment just before it
}

var (
	shFence    = regexp.MustCompile("^(\\s*)```sh\\s*$")
	notRunNote = regexp.MustCompile(`^\s*<!-- not run: (.+?) -->\s*$`)
)

// readmeBlocks returns the ```sh blocks of the Markdown file at path.
func readmeBlocks(tb testing.TB, path string) []readmeBlock {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []readmeBlock
	previous := "" // the last line that is not blank
	for i := 0; i < len(lines); i++ {
		m := shFence.FindStringSubmatch(lines[i])
		if m == nil {
			if strings.TrimSpace(lines[i]) != "" {
				previous = lines[i]
			}
			continue
		}
		b := readmeBlock{line: i + 1}
		if n := notRunNote.FindStringSubmatch(previous); n != nil {
			b.notRun = n[1]
		}
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], m[1]))
		}
		if i == len(lines) {
			tb.Fatalf("%s:%d: the sh block is not closed", path, b.line)
		}
		b.text = strings.Join(body, "\n")
		blocks = append(blocks, b)
		previous = lines[i]
	}
	return blocks
}

// blockTimeout bounds one block's run: the slowest compiles the broker (go
// run) on a busy machine.
const blockTimeout = 3 * time.Minute

// runBlock runs b in bash in dir after the header lines, with env and curl
// failing on HTTP errors, and returns what it wrote. A command that fails
// writes the README line it is on.
func runBlock(tb testing.TB, dir string, env, header []string, b readmeBlock) (string, error) {
	tb.Helper()
	// The block's first line is line len(header)+2 of the script, after the
	// trap; it is line b.line+1 of the README.
	offset := b.line + 1 - (len(header) + 2)
	trap := fmt.Sprintf(`trap 'echo "README.md:$((LINENO + %d)): exit $?: $BASH_COMMAND" >&2' ERR`, offset)
	script := strings.Join(append(append(header, trap), b.text), "\n")

	ctx, cancel := context.WithTimeout(tb.Context(), blockTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env, cmd.WaitDelay = dir, env, 5*time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("not done within %v: %w", blockTimeout, err)
	}
	return string(out), err
}

// shellEnv returns the environment of the README's blocks: PATH with a curl
// that fails on HTTP errors first, and what Go and the shell need, but none
// of the caller's own settings (BROKER_*, tokens, AWS) that a block could
// lean on without saying so.
func shellEnv(tb testing.TB, root string) []string {
	tb.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		tb.Fatal(err)
	}
	shims := tb.TempDir()
	shim := "#!/bin/sh\nexec " + curl + " --fail-with-body \"$@\"\n"
	if err := os.WriteFile(filepath.Join(shims, "curl"), []byte(shim), 0o755); err != nil {
		tb.Fatal(err)
	}
	env := []string{"PATH=" + shims + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "HOME", name == "TMPDIR", name == "USER", name == "LANG", name == "LC_ALL",
			strings.HasPrefix(name, "GO"), strings.HasPrefix(name, "CGO_"):
			env = append(env, kv)
		}
	}
	return env
}

// sandboxRun is a `broker sandbox` that the test runs in its own process.
type sandboxRun struct {
	dir     string   // its --data folder
	printed []string // its lines, until "Serving."
	exports []string // its export lines, trimmed
}

// startSandbox runs `broker sandbox --ports auto` with extra flags in this
// process, in a data folder of the test's, until its story is told and it
// serves; the test's cleanup stops it.
func startSandbox(tb testing.TB, extra ...string) *sandboxRun {
	tb.Helper()
	sb := &sandboxRun{dir: tb.TempDir()}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- sandbox(ctx, append([]string{"--ports", "auto", "--data", sb.dir}, extra...), out, out)
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			tb.Errorf("the sandbox did not stop within 20s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "\nServing.") {
		select {
		case code := <-exited:
			tb.Fatalf("the sandbox exited with %d:\n%s", code, out)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the sandbox did not serve within 60s:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		sb.printed = append(sb.printed, sc.Text())
		if strings.HasPrefix(sc.Text(), "  export ") {
			sb.exports = append(sb.exports, strings.TrimSpace(sc.Text()))
		}
	}
	return sb
}
