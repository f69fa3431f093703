// Command broker is the reciprocal token broker for Alexa mutual account
// linking. `broker serve` (the default) runs the gRPC server and HTTP gateway;
// `broker --help` lists every setting with its environment variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run dispatches the subcommand and returns the process's exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	} else if len(args) > 0 && (args[0] == "--version" || args[0] == "-version") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "sandbox":
		return sandbox(ctx, args, stdout, stderr)
	case "simulate":
		return simulate(ctx, args, stdout, stderr)
	case "keys":
		return keysCommand(ctx, args, getenv, stdout, stderr)
	case "bench":
		return benchCommand(ctx, args, getenv, stdout, stderr)
	case "links", "events", "stats":
		return operatorCommandRun(ctx, append([]string{cmd}, args...), processIO(getenv, stdout, stderr))
	case "completion":
		return completionCommand(args, stdout, stderr)
	case "help":
		usage(stdout)
		return 0
	case "version", "--version", "-version":
		return versionCommand(stdout)
	default:
		fmt.Fprintf(stderr, "broker: unknown command %q (try broker --help)\n", cmd)
		return 2
	}
}

// serve runs the broker until ctx ends (SIGTERM or SIGINT), then shuts it down.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	m := NewMain()
	m.Stdout = stdout
	if err := m.ParseFlags(args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "broker: %v\n", err)
		return 2
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		fmt.Fprintf(stderr, "broker: %v\n", err)
		return 1
	}
	<-ctx.Done()
	m.Logger.Info("shutting down")
	if err := m.Close(); err != nil {
		fmt.Fprintf(stderr, "broker: shutdown: %v\n", err)
		return 1
	}
	return 0
}
