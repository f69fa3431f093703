package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// server runs one simulator's handler on a loopback address: the lifecycle the
// simulators share.
type server struct {
	mu        sync.Mutex
	srv       *httptest.Server
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// start listens on addr, which must be a loopback address, and serves h in the
// background until close is called or ctx is done; in-flight requests see their
// context cancelled then. name prefixes errors.
func (s *server) start(ctx context.Context, name, addr string, h http.Handler) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("sim: %s: address %q: %w", name, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("sim: %s: address %q is not a loopback address", name, addr)
	}
	return s.listen(ctx, name, addr, h)
}

// listen is start without the loopback check: the admin route of a Set listens
// wherever its caller says, as `broker sandbox --admin-addr` always has.
func (s *server) listen(ctx context.Context, name, addr string, h http.Handler) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return fmt.Errorf("sim: %s: %w", name, errAlreadyStarted)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sim: %s: listen: %w", name, err)
	}
	base, cancel := context.WithCancel(ctx)
	// httptest.Server, unlike http.Server.Shutdown, closes connections that
	// never sent a request at once and waits for the handlers on Close.
	srv := &httptest.Server{
		Listener: ln,
		Config: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return base },
		},
	}
	srv.Start()
	s.srv, s.cancel = srv, cancel
	context.AfterFunc(base, s.close)
	return nil
}

var errAlreadyStarted = errors.New("already started")

// url returns the base URL, such as "http://127.0.0.1:41234", or "" before start.
func (s *server) url() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return ""
	}
	return s.srv.URL
}

// close cancels in-flight requests, waits for their handlers to return, and
// closes the listener. Calling it more than once, or without start, is harmless.
func (s *server) close() {
	s.mu.Lock()
	srv, cancel := s.srv, s.cancel
	s.mu.Unlock()
	if srv == nil {
		return
	}
	s.closeOnce.Do(func() {
		cancel()
		srv.Close()
	})
}

// writeJSON writes v as a JSON answer with status, of Content-Type
// application/json unless the caller set another; 500 when v cannot be
// encoded. Every simulator answers JSON through it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
