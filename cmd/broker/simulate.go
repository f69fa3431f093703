package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// simulate runs only the simulators, on fixed ports, and prints the settings
// that point a separately started broker at them: the sandbox's two skills,
// described by a skills file it writes (BROKER_SKILLS_FILE).
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, faults := newSimFlagSet("broker simulate", "at start", stderr)
	lwaAddr := fs.String("lwa-addr", "127.0.0.1:9301", "LWA token endpoint simulator")
	alexaAddr := fs.String("alexa-addr", "127.0.0.1:9302", "Alexa API simulator (Health API and Event Gateway)")
	authAddr := fs.String("auth-addr", "127.0.0.1:9303", "partner authorization server simulator")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9304", "simulators' admin route (faults, fresh codes)")
	data := fs.String("data", "", "folder for the skills file and its LWA secrets (default: a fresh temporary folder, removed at exit)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fail := func(code int, err error) int { fmt.Fprintf(stderr, "broker simulate: %v\n", err); return code }
	dir := *data
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "broker-simulate-"); err != nil {
			return fail(1, err)
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(1, err)
	}
	sims, err := sim.StartSet(ctx, sim.SetOptions{
		LWAAddr: *lwaAddr, AlexaAddr: *alexaAddr, AuthAddr: *authAddr, AdminAddr: *adminAddr,
		User: demoUser, Skills: sandboxSkills,
	})
	if err != nil {
		return fail(1, err)
	}
	defer sims.Close()
	p := &printer{w: stdout}
	if err := applyFaults(p, sims, *faults); err != nil {
		return fail(2, err)
	}
	env, err := sims.SkillsEnv(dir)
	if err != nil {
		return fail(1, err)
	}
	// The console of a broker on the default HTTP address signs in here.
	consoleURL, err := registerConsole(sims.Auth, "127.0.0.1:8080")
	if err != nil {
		return fail(1, err)
	}
	env["BROKER_CONSOLE_CLIENT_ID"] = consoleClient
	p.line("Simulators running, with two skills:")
	printSkills(p, sims, env["BROKER_SKILLS_FILE"])
	p.line("")
	p.line("Point a broker at them with:")
	for _, k := range slices.Sorted(maps.Keys(env)) {
		p.line("  export %s='%s'", k, env[k])
	}
	p.line(`  export BROKER_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)"`)
	p.line("  go run ./cmd/broker serve")
	p.line("(Its operator console is then %s.)", consoleURL)
	p.line("(The skills file and its secrets last while the simulators run. Such a broker sends every region's")
	p.line("reports and events to BROKER_ALEXA_API_URL, which the simulator records without a region.)")
	p.line("")
	printTryIt(p, "127.0.0.1:9090", "http://127.0.0.1:8080", sims.AdminURL(), newDevTokens(sims.Auth))
	p.line("")
	p.line("Ctrl-C stops the simulators.")
	<-ctx.Done()
	return 0
}

// newSimFlagSet returns the flag set of a command that runs the simulators
// (sandbox, simulate): it reports to stderr and collects repeated --fault flags,
// switched on when, into the returned list.
func newSimFlagSet(name, when string, stderr io.Writer) (*flag.FlagSet, *faultFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	faults := new(faultFlags)
	fs.Var(faults, "fault", "switch a simulator fault on "+when+", repeatable: "+sim.FaultNames)
	return fs, faults
}

// parseFlags parses args into fs. It reports false, with the exit code, when
// the command stops here: 0 after --help, 2 after a bad flag (fs has said why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

// faultFlags collects repeated --fault flags.
type faultFlags []string

func (f *faultFlags) String() string     { return strings.Join(*f, ",") }
func (f *faultFlags) Set(v string) error { *f = append(*f, v); return nil }

// applyFaults switches on each named fault, printing what changed.
func applyFaults(p *printer, sims *sim.Set, faults []string) error {
	for _, f := range faults {
		msg, err := sims.Faults.Apply(f, 0)
		if err != nil {
			return fmt.Errorf("--fault: %w", err)
		}
		p.line("fault on: %s", msg)
	}
	return nil
}
