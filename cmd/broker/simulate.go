package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// simulate runs only the simulators, on fixed ports, and prints the settings
// that point a separately started broker at them.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, faults := newSimFlagSet("broker simulate", "at start", stderr)
	lwaAddr := fs.String("lwa-addr", "127.0.0.1:9301", "LWA token endpoint simulator")
	alexaAddr := fs.String("alexa-addr", "127.0.0.1:9302", "Alexa Health API simulator")
	authAddr := fs.String("auth-addr", "127.0.0.1:9303", "partner authorization server simulator")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9304", "simulators' admin route (faults, fresh codes)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	sims, err := sim.StartSet(ctx, sim.SetOptions{
		LWAAddr: *lwaAddr, AlexaAddr: *alexaAddr, AuthAddr: *authAddr, AdminAddr: *adminAddr,
		User: demoUser, AlexaClientID: demoAlexa,
	})
	if err != nil {
		fmt.Fprintf(stderr, "broker simulate: %v\n", err)
		return 1
	}
	defer sims.Close()
	p := &printer{w: stdout}
	if err := applyFaults(p, sims, *faults); err != nil {
		fmt.Fprintf(stderr, "broker simulate: %v\n", err)
		return 2
	}
	p.line("Simulators running. Point a broker at them with:")
	env := sims.BrokerEnv()
	for _, k := range slices.Sorted(maps.Keys(env)) {
		p.line("  export %s='%s'", k, env[k])
	}
	p.line(`  export BROKER_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)"`)
	p.line("  go run ./cmd/broker serve")
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
