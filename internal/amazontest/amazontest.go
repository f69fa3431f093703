// Package amazontest holds what the tests of the broker's clients of Amazon's
// APIs (Login with Amazon, the Alexa Health API, the Event Gateway) share to
// check what those clients tell their observers: a fake observer that records
// each request's call and outcome, and an HTTP client that counts the
// requests it makes, so that a test can compare the two.
package amazontest

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Observation is one request an observer was told of.
type Observation struct {
	Call, Outcome string
}

// Observer is a fake of the clients' observers (lwa.Observer,
// alexa.Observer): it records the call and outcome of every request it is
// told of, in order. It is safe for concurrent use.
type Observer struct {
	mu  sync.Mutex
	got []Observation
}

// ObserveAmazonCall records call and outcome.
func (o *Observer) ObserveAmazonCall(call, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, Observation{Call: call, Outcome: outcome})
}

// Observations returns what was recorded so far, in order.
func (o *Observer) Observations() []Observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Observation(nil), o.got...)
}

// CountingTransport is an http.RoundTripper that counts the requests a client
// makes, answered or not.
type CountingTransport struct {
	base     http.RoundTripper
	requests atomic.Int32
}

// RoundTrip counts r and carries it.
func (c *CountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	return c.base.RoundTrip(r)
}

// Requests returns how many requests were made so far.
func (c *CountingTransport) Requests() int { return int(c.requests.Load()) }

// CountingClient returns an HTTP client that counts its requests, does not
// follow redirects (as the broker's clients do) and gives up on a request
// after timeout (0: never). Its idle connections are closed when tb ends.
func CountingClient(tb testing.TB, timeout time.Duration) (*http.Client, *CountingTransport) {
	tb.Helper()
	base := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(base.CloseIdleConnections)
	ct := &CountingTransport{base: base}
	return &http.Client{
		Transport:     ct,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, ct
}

// ClosedURL returns an http URL of a loopback port that nothing listens on (a
// moment ago), for requests that get no answer at all.
func ClosedURL(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		tb.Fatal(err)
	}
	return "http://" + addr
}
