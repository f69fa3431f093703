package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionFrom(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"Tagged", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: vcs[:3]},
			"broker v1.2.3 (revision 0123456789abcdef0123456789abcdef01234567, 2026-01-02T03:04:05Z)"},
		{"DevelModified", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			"broker devel (revision 0123456789abcdef0123456789abcdef01234567, 2026-01-02T03:04:05Z, modified)"},
		{"NoVCS", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "broker devel (revision unknown)"},
		{"NoBuildInfo", nil, "broker devel (revision unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := versionFrom(tt.bi, tt.bi != nil)
			if got := v.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if tt.bi != nil && v.GoVersion != tt.bi.GoVersion {
				t.Errorf("GoVersion = %q, want %q", v.GoVersion, tt.bi.GoVersion)
			}
		})
	}
}

// TestRun_Version runs `broker version` and `broker --version`: both print the
// same two lines and exit 0, without reading any setting.
func TestRun_Version(t *testing.T) {
	want := "broker devel (revision unknown)\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		t.Run(args[0], func(t *testing.T) {
			var stdout, stderr syncBuffer
			if code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d, want 0; stderr: %s", code, stderr.String())
			}
			// A test binary has no VCS information and is not a tagged module.
			if got := stdout.String(); got != want {
				t.Errorf("stdout = %q, want %q", got, want)
			}
			if stderr.String() != "" {
				t.Errorf("stderr = %q, want nothing", stderr.String())
			}
		})
	}
}

// TestBinary_Version builds the binary as the Dockerfile does, with the
// version and revision set by -ldflags, and runs its --version.
func TestBinary_Version(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "broker")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.revision=feedc0de", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("broker --version: %v\n%s", err, out)
	}
	if got, want := strings.SplitN(string(out), "\n", 2)[0], "broker v9.8.7 (revision feedc0de)"; got != want {
		t.Errorf("first line = %q, want %q", got, want)
	}
}

// TestMain_BuildInfo boots the broker and finds its build in /metrics and in
// the start-up log line.
func TestMain_BuildInfo(t *testing.T) {
	h := newHarness(t)
	_, body := h.call("GET", "/metrics", "", "")
	want := `broker_build_info{go_version="` + runtime.Version() + `",revision="unknown",version="devel"} 1`
	if !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	var serving string
	for line := range strings.Lines(h.logs.String()) {
		if strings.Contains(line, "broker serving") {
			serving = line
		}
	}
	if !strings.Contains(serving, `"version":"devel"`) || !strings.Contains(serving, `"revision":"unknown"`) {
		t.Errorf("start-up log line lacks the version and revision: %q", serving)
	}
}
