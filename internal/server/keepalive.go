package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Keepalive bounds the connections of the gRPC port: how long an idle one is
// kept, how a silent peer is found out, and how often a client may ping. A zero
// field takes DefaultKeepalive's value.
type Keepalive struct {
	// MaxConnectionIdle is how long a connection with no call in flight stays
	// open; then the server sends GOAWAY and closes it. A client reconnects by
	// itself at its next call.
	MaxConnectionIdle time.Duration
	// Time is how long a connection may be silent before the server pings the
	// client, and Timeout how long it waits for the ping's answer before it
	// closes the connection.
	Time    time.Duration
	Timeout time.Duration
	// MinTime is the shortest interval between a client's pings the server
	// accepts, with or without a call in flight; a client that pings more often
	// gets GOAWAY with ENHANCE_YOUR_CALM and "too_many_pings", and its
	// connection is closed.
	MinTime time.Duration
}

// DefaultKeepalive is the keepalive of a server whose Options leave it zero:
// idle connections close after 5 minutes, silent peers are pinged after 1
// minute and dropped 20 s later, and clients may ping every 20 s, also between
// calls (gRPC clients cannot be told to ping less than every 10 s).
var DefaultKeepalive = Keepalive{
	MaxConnectionIdle: 5 * time.Minute,
	Time:              time.Minute,
	Timeout:           20 * time.Second,
	MinTime:           20 * time.Second,
}

// withDefaults returns k with every zero field set to DefaultKeepalive's.
func (k Keepalive) withDefaults() Keepalive {
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&k.MaxConnectionIdle, DefaultKeepalive.MaxConnectionIdle},
		{&k.Time, DefaultKeepalive.Time},
		{&k.Timeout, DefaultKeepalive.Timeout},
		{&k.MinTime, DefaultKeepalive.MinTime},
	} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	return k
}

// serverOptions returns the gRPC server options that apply k.
func (k Keepalive) serverOptions() []grpc.ServerOption {
	k = k.withDefaults()
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: k.MaxConnectionIdle,
			Time:              k.Time,
			Timeout:           k.Timeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             k.MinTime,
			PermitWithoutStream: true,
		}),
	}
}
