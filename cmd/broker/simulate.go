package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sort"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// simulate runs only the simulators, on fixed ports, and prints the settings
// that point a separately started broker at them.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lwaAddr := fs.String("lwa-addr", "127.0.0.1:9301", "LWA token endpoint simulator")
	alexaAddr := fs.String("alexa-addr", "127.0.0.1:9302", "Alexa Health API simulator")
	authAddr := fs.String("auth-addr", "127.0.0.1:9303", "partner authorization server simulator")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9304", "simulators' admin route (faults, fresh codes)")
	var faults faultFlags
	fs.Var(&faults, "fault", "switch a simulator fault on at start, repeatable: "+sim.FaultNames)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	sims, err := startSimulators(ctx, *lwaAddr, *alexaAddr, *authAddr, *adminAddr)
	if err != nil {
		fmt.Fprintf(stderr, "broker simulate: %v\n", err)
		return 1
	}
	defer sims.close()
	p := &printer{w: stdout}
	for _, f := range faults {
		msg, err := sims.faults.Apply(f, 0)
		if err != nil {
			fmt.Fprintf(stderr, "broker simulate: --fault: %v\n", err)
			return 2
		}
		p.line("fault on: %s", msg)
	}
	p.line("Simulators running. Point a broker at them with:")
	env := sims.brokerEnv()
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range slices.Compact(keys) {
		p.line("  export %s='%s'", k, env[k])
	}
	p.line(`  export BROKER_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)"`)
	p.line("  go run ./cmd/broker serve")
	p.line("")
	printTryIt(p, "127.0.0.1:9090", "http://127.0.0.1:8080", sims.adminURL(), sims.devTokens())
	p.line("")
	p.line("Ctrl-C stops the simulators.")
	<-ctx.Done()
	return 0
}
