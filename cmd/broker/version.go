package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and revision, when set with -ldflags "-X main.version=... -X
// main.revision=...", replace what the build info says: the Dockerfile sets
// them, as its build context has no .git for Go to read the revision from.
var version, revision string

// buildVersion is what the binary knows of its own build.
type buildVersion struct {
	// Version is the module's version (v1.2.3) or "devel" when it was not
	// built as a tagged module.
	Version string
	// Revision is the VCS commit, Time its commit time (RFC 3339) and
	// Modified whether the work tree had changes; Revision is "unknown" and
	// Time empty when Go recorded no VCS information (-buildvcs=false).
	Revision string
	Time     string
	Modified bool
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// readVersion returns this binary's buildVersion, from runtime/debug's build
// information and the -X overrides.
func readVersion() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	v := versionFrom(bi, ok)
	if version != "" {
		v.Version = version
	}
	if revision != "" {
		// The build information's time and modified flag describe the
		// checkout Go saw, which need not be the revision given.
		v.Revision, v.Time, v.Modified = revision, "", false
	}
	return v
}

// versionFrom reads a buildVersion from build information; ok false (no
// build information) gives "devel" at an unknown revision.
func versionFrom(bi *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Version: "devel", Revision: "unknown", GoVersion: runtime.Version()}
	if !ok || bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the first line of `broker version`: "broker v1.2.3 (revision
// abc123, 2026-01-02T03:04:05Z, modified)", the time and "modified" only when
// known and true.
func (v buildVersion) String() string {
	s := "broker " + v.Version + " (revision " + v.Revision
	if v.Time != "" {
		s += ", " + v.Time
	}
	if v.Modified {
		s += ", modified"
	}
	return s + ")"
}

// versionCommand prints the version, for `broker version` and `broker --version`.
func versionCommand(stdout io.Writer) int {
	v := readVersion()
	fmt.Fprintf(stdout, "%s\n%s %s/%s\n", v, v.GoVersion, runtime.GOOS, runtime.GOARCH)
	return 0
}

// newBuildInfo returns the gauge broker_build_info{version,revision,go_version},
// always 1, for dashboards to tell which build each instance runs.
func newBuildInfo(v buildVersion) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "broker_build_info",
		Help:        "The broker's build: module version (devel when untagged), VCS revision and Go version; always 1.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Revision, "go_version": v.GoVersion},
	})
	g.Set(1)
	return g
}
