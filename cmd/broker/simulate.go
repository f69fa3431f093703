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
	"syscall"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// simulate runs only the simulators, on fixed ports, and prints the settings
// that point a separately started broker at them: the sandbox's two skills,
// described by a skills file it writes (BROKER_SKILLS_FILE).
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, faults, ports := newSimFlagSet("broker simulate", "at start", stderr)
	lwaAddr := ports.addr("lwa-addr", "127.0.0.1:9301", "LWA token endpoint simulator")
	alexaAddr := ports.addr("alexa-addr", "127.0.0.1:9302", "Alexa API simulator (Health API and Event Gateway)")
	authAddr := ports.addr("auth-addr", "127.0.0.1:9303", "partner authorization server simulator")
	adminAddr := ports.addr("admin-addr", "127.0.0.1:9304", "simulators' admin route (faults, fresh codes)")
	data := fs.String("data", "", "folder for the skills file and its LWA secrets (default: a fresh temporary folder, removed at exit)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	ports.resolve()
	fail := func(code int, err error) int {
		fmt.Fprintf(stderr, "broker simulate: %v\n", inUseHint(err))
		return code
	}
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
// (sandbox, simulate): it reports to stderr, collects repeated --fault flags,
// switched on when, into the returned list, and has --ports for the listen
// addresses the command adds with the returned portFlags.
func newSimFlagSet(name, when string, stderr io.Writer) (*flag.FlagSet, *faultFlags, *portFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	faults := new(faultFlags)
	fs.Var(faults, "fault", "switch a simulator fault on "+when+", repeatable: "+sim.FaultNames)
	ports := &portFlags{fs: fs, mode: "fixed", addrs: map[string]*string{}}
	fs.Var(&ports.mode, "ports", "`mode` of the listen addresses: fixed, each address flag's default; auto, a free port of 127.0.0.1 for each one not given, so that several can run at once (the addresses are printed)")
	return fs, faults, ports
}

// portFlags are the listen address flags of a command that runs the
// simulators, and its --ports flag, which may give them free ports.
type portFlags struct {
	fs    *flag.FlagSet
	mode  portsMode
	addrs map[string]*string // by flag name
}

// addr adds a listen address flag.
func (p *portFlags) addr(name, def, usage string) *string {
	p.addrs[name] = p.fs.String(name, def, usage+" (--ports auto: a free port)")
	return p.addrs[name]
}

// resolve gives, after parsing and with --ports auto, every address flag not
// given on the command line a free port of 127.0.0.1.
func (p *portFlags) resolve() {
	if p.mode != "auto" {
		return
	}
	given := map[string]bool{}
	p.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, addr := range p.addrs {
		if !given[name] {
			*addr = "127.0.0.1:0"
		}
	}
}

// portsMode is the value of --ports: "fixed" (the default) or "auto".
type portsMode string

func (m *portsMode) String() string { return string(*m) }

// Set accepts fixed or auto.
func (m *portsMode) Set(v string) error {
	if v != "fixed" && v != "auto" {
		return fmt.Errorf("want fixed or auto, not %q", v)
	}
	*m = portsMode(v)
	return nil
}

// inUseHint adds to an error of a listen address already in use that --ports
// auto picks free ones.
func inUseHint(err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (is another sandbox or simulate running? --ports auto picks free ports)", err)
	}
	return err
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
