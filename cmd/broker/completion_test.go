package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// completionFile writes the script of `broker completion shell` to a temp
// file and returns its path.
func completionFile(t *testing.T, shell string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"completion", shell}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("broker completion %s: exit %d, %s", shell, code, stderr.String())
	}
	path := filepath.Join(t.TempDir(), "broker."+shell)
	if err := os.WriteFile(path, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompletion_Bash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := completionFile(t, "bash")
	// comp WORDS... prints the completions of the last word.
	const driver = `
source "$1" || exit 1
complete -p broker || exit 1
comp() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _broker; echo "${COMPREPLY[*]}"; }
`
	for _, tt := range []struct {
		name  string
		words []string
		want  string
	}{
		{"Commands", []string{"broker", ""}, "serve sandbox simulate keys bench links events stats completion version help --help --version"},
		{"CommandPrefix", []string{"broker", "st"}, "stats"},
		{"LinksSubcommands", []string{"broker", "links", ""}, "list get refresh delete"},
		{"Shells", []string{"broker", "completion", ""}, "bash zsh"},
		{"FlagPrefix", []string{"broker", "links", "list", "--st"}, "--state"},
		{"States", []string{"broker", "links", "list", "--state", ""}, "LINKED RELINK_REQUIRED"},
		{"EventTypes", []string{"broker", "events", "--type", "link.re"}, "link.refreshed link.relink_required"},
		{"FlagValue", []string{"broker", "links", "list", "--skill-id", ""}, ""},
		{"AfterAFlagValue", []string{"broker", "links", "delete", "--skill-id", "baby", "alice", "--y"}, "--yes"},
		{"AfterABoolFlag", []string{"broker", "links", "list", "--json", "--al"}, "--all"},
		{"NoYesOnGet", []string{"broker", "links", "get", "alice", "--y"}, ""},
		{"StatsFlags", []string{"broker", "stats", "--j"}, "--json"},
		{"AfterTheLastSubcommand", []string{"broker", "keys", "status", ""}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-c", driver + "\ncomp \"${@:2}\"", "bash", script}, tt.words...)
			out, err := exec.Command(bash, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if got := lines[0]; got != "complete -F _broker broker" {
				t.Errorf("complete -p broker = %q", got)
			}
			if got := lines[len(lines)-1]; len(lines) != 2 || got != tt.want {
				t.Errorf("completions of %q = %q, want %q", tt.words, lines[1:], tt.want)
			}
		})
	}
}

func TestCompletion_Zsh(t *testing.T) {
	script := completionFile(t, "zsh")
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "#compdef broker\n") || !strings.Contains(string(b), `"links list") compadd -- --all`) {
		t.Errorf("the zsh script lacks #compdef or the flags of links list:\n%s", b)
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("no zsh to load the script")
	}
	out, err := exec.Command(zsh, "-f", "-c", `autoload -U compinit && compinit -u -D && source "$1" && print -r -- $_comps[broker]`, "zsh", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "_broker" {
		t.Errorf("zsh: %v, %q; want _broker registered for broker", err, out)
	}
}

func TestCompletion_Commands(t *testing.T) {
	t.Run("Dispatched", func(t *testing.T) {
		// Every command completion offers is one run knows.
		for _, cmd := range topCommands {
			var stdout, stderr bytes.Buffer
			run(t.Context(), []string{cmd, "--help"}, func(string) string { return "" }, &stdout, &stderr)
			if strings.Contains(stderr.String(), "unknown command") {
				t.Errorf("broker %s: %s", cmd, stderr.String())
			}
		}
	})
	t.Run("Usage", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), []string{"completion", "fish"}, func(string) string { return "" }, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "want bash or zsh") {
			t.Errorf("broker completion fish: exit %d, %q; want 2, want bash or zsh", code, stderr.String())
		}
	})
}
