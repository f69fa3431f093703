package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/health"
	"github.com/reciprocal-broker/broker/internal/server"
)

// Main is the broker program: its configuration and the parts it wires
// together. Tests boot the real program through it on port 0 in a temp dir.
type Main struct {
	// Config is the validated configuration, set by ParseFlags (or by tests).
	Config config.Config
	// Stdout receives the logs.
	Stdout io.Writer
	// Logger is built by Run from Config and Stdout.
	Logger *slog.Logger
	// Server is the running gRPC server and HTTP gateway, set by Run.
	Server *server.Server

	closers []func() error
}

// NewMain returns a Main that logs to stdout.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Logger: slog.New(slog.DiscardHandler)}
}

// ParseFlags reads and validates the configuration.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	c, err := config.Parse(args, getenv)
	if err != nil {
		return err
	}
	m.Config = c
	return nil
}

// Run starts the broker and returns once it is serving; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	m.Logger = newLogger(m.Stdout, m.Config.LogLevel)
	checker := health.New(nil)
	srv, err := server.New(server.Options{
		GRPCAddr: m.Config.GRPCAddr,
		HTTPAddr: m.Config.HTTPAddr,
		Logger:   m.Logger,
		Health:   checker,
	})
	if err != nil {
		return err
	}
	if err := srv.Open(); err != nil {
		return err
	}
	m.Server = srv
	m.closers = append(m.closers, srv.Close)
	m.Logger.Info("broker serving", "grpc_addr", srv.GRPCAddr(), "http_addr", srv.HTTPAddr())
	return nil
}

// Close stops the broker gracefully, in the reverse order of start-up.
func (m *Main) Close() error {
	var first error
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	m.closers = nil
	return first
}

// newLogger logs JSON when w is not a terminal, readable text when it is.
func newLogger(w io.Writer, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
