package tokens

import (
	"context"
	"sync"
	"time"
)

// errClosing is what a refresh or exchange asked for after Close answers.
var errClosing = &Error{Code: EUNAVAILABLE, Message: "the broker is shutting down; try again"}

// inflight tracks a Service's detached work: the refreshes and exchanges that
// run on after the caller that started them has gone, because LWA's answer may
// hold a rotated refresh token or a used code's only grant. Close refuses new
// work and waits for the rest. It is safe for concurrent use.
type inflight struct {
	mu      sync.Mutex
	closed  bool
	running int
	idle    chan struct{} // closed once closed and running reaches zero

	// stop ends when Close gives up waiting: the work still running is cut
	// short then.
	stop    context.Context
	abandon context.CancelFunc
}

// newInflight returns an inflight that accepts work.
func newInflight() *inflight {
	stop, abandon := context.WithCancel(context.Background())
	return &inflight{idle: make(chan struct{}), stop: stop, abandon: abandon}
}

// enter counts one more piece of work, unless Close was called: then it
// reports false and the work must not start.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.running++
	return true
}

// leave counts one piece of work as done.
func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	if f.closed && f.running == 0 {
		close(f.idle)
	}
}

// close refuses new work and returns how much is running.
func (f *inflight) close() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		if f.running == 0 {
			close(f.idle)
		}
	}
	return f.running
}

// detach starts a piece of detached work for a caller with ctx: it returns a
// context that keeps ctx's values but not its cancellation, ends after timeout
// or when Close gives up waiting, and a done func the work calls when it has
// finished. It returns an EUNAVAILABLE error, and no work, once Close was
// called.
func (s *Service) detach(ctx context.Context, timeout time.Duration) (context.Context, func(), error) {
	if !s.work.enter() {
		return nil, nil, errClosing
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	unhook := context.AfterFunc(s.work.stop, cancel)
	return wctx, func() {
		unhook()
		cancel()
		s.work.leave()
	}, nil
}

// recordTimeout bounds a store write that records an answer LWA has given: a
// refresh's grant or refusal, an exchanged code's grant. The write runs on its
// own time rather than within refreshTimeout or exchangeTimeout, because LWA
// may answer just before that deadline, and its answer may hold a rotated
// refresh token or a used code's only grant, which a write cut short by the
// deadline would lose. A few store calls fit in it with room; leaseTTL counts
// it in, so that a refresh lease outlasts the write.
const recordTimeout = 5 * time.Second

// recordContext returns the context of a store write that records an answer
// LWA gave to work running with ctx: it keeps ctx's values but not its
// deadline or cancellation, and ends after recordTimeout or when Close gives
// up waiting. Call cancel once the write is done.
func (s *Service) recordContext(ctx context.Context) (rctx context.Context, cancel context.CancelFunc) {
	rctx, stop := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	unhook := context.AfterFunc(s.work.stop, stop)
	return rctx, func() {
		unhook()
		stop()
	}
}

// Close drains the Service for shutdown. From its call on, a Token, Refresh or
// Exchange that needs Login with Amazon returns an EUNAVAILABLE error without
// calling it (fresh tokens are still handed out, and a refresh already in
// flight still answers the callers waiting for it). Close then waits for the
// refreshes and exchanges in flight, those whose callers have given up
// included, to finish and store LWA's answer, so that a rotated refresh token
// is never dropped, and returns nil. Call it before the store closes.
//
// When ctx ends first, Close cuts short the work still running and returns an
// EUNAVAILABLE error saying how much; what LWA answers to it then is lost.
// Calling Close again waits again.
func (s *Service) Close(ctx context.Context) error {
	if n := s.work.close(); n > 0 {
		s.Logger.Info("waiting for refreshes and exchanges in flight", "count", n)
	}
	select {
	case <-s.work.idle:
		return nil
	case <-ctx.Done():
	}
	s.work.abandon()
	s.work.mu.Lock()
	n := s.work.running
	s.work.mu.Unlock()
	if n == 0 {
		return nil // the last ones finished meanwhile
	}
	s.Logger.Error("shutdown cut refreshes and exchanges short; their LWA answers are lost", "count", n)
	return Errorf(EUNAVAILABLE, "shutdown cut %d refreshes or exchanges short", n)
}

// shareDetached runs work once per key in this process, detached from the
// callers (see detach) and bounded by timeout, and returns its link to every
// caller that asks for key meanwhile, each within its own ctx: a caller whose
// ctx ends first gets an EUNAVAILABLE error while the work runs on.
func (s *Service) shareDetached(ctx context.Context, key string, timeout time.Duration, work func(context.Context) (*Link, error)) (*Link, error) {
	ch := s.flight.DoChan(key, func() (any, error) {
		wctx, done, err := s.detach(ctx, timeout)
		if err != nil {
			return nil, err
		}
		defer done()
		return work(wctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Link), nil
	case <-ctx.Done():
		return nil, Errorf(EUNAVAILABLE, "Login with Amazon did not answer in time")
	}
}
