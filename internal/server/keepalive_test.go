package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/reciprocal-broker/broker/internal/server"
)

// TestServer_Keepalive checks the gRPC port's keepalive: an idle connection is
// closed after MaxConnectionIdle, a client that pings more often than MinTime
// is sent away with too_many_pings, and one that keeps to MinTime is not.
func TestServer_Keepalive(t *testing.T) {
	t.Run("IdleConnectionClosed", func(t *testing.T) {
		s := open(t, server.Options{Keepalive: server.Keepalive{MaxConnectionIdle: 200 * time.Millisecond}})
		conn := dial(t, s)
		if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		// The call succeeded, so the connection was READY; the server's GOAWAY
		// takes it, idle, out of READY. (On a loaded machine that may have
		// happened already, before the state is read.)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		for state := conn.GetState(); state == connectivity.Ready; state = conn.GetState() {
			if !conn.WaitForStateChange(ctx, state) {
				t.Fatalf("the idle connection is still %v after 5 s, want it closed after 200ms", state)
			}
		}
	})

	t.Run("PingsTooOften", func(t *testing.T) {
		s := open(t, server.Options{})
		c := dialHTTP2(t, s.GRPCAddr())
		for i := range 10 {
			c.ping(t, i)
		}
		code, debug := c.waitGoAway(t, 5*time.Second)
		if code != http2.ErrCodeEnhanceYourCalm || debug != "too_many_pings" {
			t.Errorf("GOAWAY = %v %q, want ENHANCE_YOUR_CALM \"too_many_pings\"", code, debug)
		}
	})

	t.Run("PingsAtMinTime", func(t *testing.T) {
		const minTime = 50 * time.Millisecond
		s := open(t, server.Options{Keepalive: server.Keepalive{MinTime: minTime}})
		c := dialHTTP2(t, s.GRPCAddr())
		// Pings paced at twice MinTime, between calls: each is answered, none
		// is a strike.
		tick := time.NewTicker(2 * minTime)
		defer tick.Stop()
		for i := range 6 {
			c.ping(t, i)
			if got := c.waitPingAck(t, 5*time.Second); got != i {
				t.Fatalf("ping %d: acknowledged ping %d", i, got)
			}
			<-tick.C
		}
	})
}

// h2conn is a bare HTTP/2 client connection, to do what a gRPC client will
// not: ping as often as it likes.
type h2conn struct {
	framer *http2.Framer
	frames chan h2frame
}

// h2frame is what the tests need of a frame the server sent.
type h2frame struct {
	typ   http2.FrameType
	ping  int // a PING ack's payload
	code  http2.ErrCode
	debug string
	err   error // the connection's read error, last
}

// dialHTTP2 opens an HTTP/2 connection to addr (prior knowledge, no TLS) and
// reads the server's frames in the background until the connection ends.
func dialHTTP2(tb testing.TB, addr string) *h2conn {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	if _, err := nc.Write([]byte(http2.ClientPreface)); err != nil {
		tb.Fatal(err)
	}
	c := &h2conn{framer: http2.NewFramer(nc, nc), frames: make(chan h2frame, 64)}
	if err := c.framer.WriteSettings(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer close(c.frames)
		for {
			f, err := c.framer.ReadFrame()
			if err != nil {
				c.frames <- h2frame{err: err}
				return
			}
			out := h2frame{typ: f.Header().Type}
			switch f := f.(type) {
			case *http2.PingFrame:
				if !f.IsAck() {
					continue // the server's own ping, not an answer
				}
				out.ping = int(f.Data[0])
			case *http2.GoAwayFrame:
				out.code, out.debug = f.ErrCode, string(f.DebugData())
			}
			c.frames <- out
		}
	}()
	return c
}

// ping sends a PING whose payload starts with the byte n.
func (c *h2conn) ping(tb testing.TB, n int) {
	tb.Helper()
	if err := c.framer.WritePing(false, [8]byte{byte(n)}); err != nil {
		tb.Fatalf("ping %d: %v", n, err)
	}
}

// next returns the server's next frame of type want, failing the test on
// a GOAWAY it did not ask for, the end of the connection or the deadline.
func (c *h2conn) next(tb testing.TB, within time.Duration, want http2.FrameType) h2frame {
	tb.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-c.frames:
			switch {
			case !ok || f.err != nil:
				tb.Fatalf("connection ended (%v) while waiting for %v", f.err, want)
			case f.typ == want:
				return f
			case f.typ == http2.FrameGoAway:
				tb.Fatalf("GOAWAY %v %q while waiting for %v", f.code, f.debug, want)
			}
		case <-deadline:
			tb.Fatalf("no %v within %v", want, within)
		}
	}
}

// waitGoAway returns the error code and debug data of the server's GOAWAY.
func (c *h2conn) waitGoAway(tb testing.TB, within time.Duration) (http2.ErrCode, string) {
	tb.Helper()
	f := c.next(tb, within, http2.FrameGoAway)
	return f.code, f.debug
}

// waitPingAck returns the number of the next ping the server acknowledged.
func (c *h2conn) waitPingAck(tb testing.TB, within time.Duration) int {
	tb.Helper()
	return c.next(tb, within, http2.FramePing).ping
}
