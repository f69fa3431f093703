package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// RunLeases runs the conformance suite of refresh leases (tokens.Leaser) against
// the leasers that open returns, new and empty for each subtest; open registers
// whatever cleanup the store needs with t.Cleanup.
//
// Beyond the doc comments of tokens.Leaser, the suite pins down:
//
//   - The leaser compares the times it is given, never its own clock: a lease
//     that ends at until is held at now == until, and free at any now after it.
//   - AcquireLease refuses what tokens.ValidateLease refuses, with its EINVALID
//     error, and records nothing; ReleaseLease with an empty user id or owner
//     releases nothing and returns nil.
//   - A context that has ended is an EUNAVAILABLE error from both methods.
//   - Leases of different users are independent.
func RunLeases(t *testing.T, open func(t *testing.T) tokens.Leaser) {
	t.Helper()
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const user = "user-1"

	type step struct {
		acquire     bool // else release
		owner       string
		now, until  time.Duration
		wantHeld    bool
		description string
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"AcquireFree", []step{
			{true, "a", 0, 30 * time.Second, true, "free lease"},
		}},
		{"SecondOwnerRefused", []step{
			{true, "a", 0, 30 * time.Second, true, "free lease"},
			{true, "b", time.Second, 31 * time.Second, false, "lease a holds"},
			{true, "a", 2 * time.Second, 32 * time.Second, true, "a's own lease"},
		}},
		{"SameOwnerExtends", []step{
			{true, "a", 0, 30 * time.Second, true, "free lease"},
			{true, "a", 10 * time.Second, 60 * time.Second, true, "a's own lease, extended"},
			{true, "b", 45 * time.Second, 75 * time.Second, false, "lease a extended"},
			{true, "b", 61 * time.Second, 91 * time.Second, true, "lease a's extension ended"},
		}},
		{"HeldUntilItsEnd", []step{
			{true, "a", 0, 30 * time.Second, true, "free lease"},
			{true, "b", 30 * time.Second, 60 * time.Second, false, "lease at its last instant"},
			{true, "b", 30*time.Second + time.Nanosecond, 60 * time.Second, true, "lease just ended"},
		}},
		{"ExpiredTakenOver", []step{
			{true, "a", 0, 30 * time.Second, true, "free lease"},
			{true, "b", 31 * time.Second, 61 * time.Second, true, "a's lease ended"},
			{true, "a", 32 * time.Second, 62 * time.Second, false, "lease b took over"},
		}},
		{"ReleaseByNonOwner", []step{
			{true, "a", 0, 30 * time.Second, true, "free lease"},
			{false, "b", 0, 0, false, "release by b"},
			{true, "b", time.Second, 31 * time.Second, false, "lease a still holds"},
			{true, "a", 2 * time.Second, 32 * time.Second, true, "a's own lease"},
		}},
		{"ReleaseThenAcquire", []step{
			{true, "a", 0, 30 * time.Second, true, "free lease"},
			{false, "a", 0, 0, false, "release by a"},
			{true, "b", time.Second, 31 * time.Second, true, "released lease"},
			{true, "a", 2 * time.Second, 32 * time.Second, false, "lease b took"},
		}},
		{"ReleaseFree", []step{
			{false, "a", 0, 0, false, "release of a lease nobody holds"},
			{true, "b", 0, 30 * time.Second, true, "free lease"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := open(t)
			for i, st := range tt.steps {
				if !st.acquire {
					if err := l.ReleaseLease(t.Context(), user, st.owner); err != nil {
						t.Fatalf("step %d (%s): ReleaseLease(%q) error = %v", i, st.description, st.owner, err)
					}
					continue
				}
				held, err := l.AcquireLease(t.Context(), user, st.owner, at(st.now), at(st.until))
				if err != nil {
					t.Fatalf("step %d (%s): AcquireLease(%q) error = %v", i, st.description, st.owner, err)
				}
				if held != st.wantHeld {
					t.Errorf("step %d (%s): AcquireLease(%q, now +%s) = %v, want %v", i, st.description, st.owner, st.now, held, st.wantHeld)
				}
			}
		})
	}

	t.Run("SeparateUsers", func(t *testing.T) {
		l := open(t)
		for _, u := range []string{"user-1", "user-2", "user-1#x", "user"} {
			held, err := l.AcquireLease(t.Context(), u, "owner-"+u, t0, at(30*time.Second))
			if err != nil || !held {
				t.Errorf("AcquireLease(%q) = %v, %v; want a lease of its own", u, held, err)
			}
		}
		if err := l.ReleaseLease(t.Context(), "user-1", "owner-user-1"); err != nil {
			t.Fatal(err)
		}
		if held, err := l.AcquireLease(t.Context(), "user-2", "other", t0, at(30*time.Second)); err != nil || held {
			t.Errorf("AcquireLease(user-2) after releasing user-1 = %v, %v; want user-2 still held", held, err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		const owners = 20
		l := open(t)
		held := make([]bool, owners)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range owners {
			wg.Go(func() {
				<-start
				ok, err := l.AcquireLease(t.Context(), user, fmt.Sprintf("owner-%02d", i), t0, at(30*time.Second))
				if err != nil {
					t.Errorf("owner %d: AcquireLease error = %v", i, err)
				}
				held[i] = ok
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for _, ok := range held {
			if ok {
				winners++
			}
		}
		if winners != 1 {
			t.Errorf("%d of %d racing owners got the lease, want exactly 1", winners, owners)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range []struct{ name, user, owner string }{
			{"NoUserID", "", "a"},
			{"NoOwner", user, ""},
			{"Neither", "", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				l := open(t)
				_, err := l.AcquireLease(t.Context(), tt.user, tt.owner, t0, at(30*time.Second))
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("AcquireLease(%q, %q) error = %v (code %q), want code %q", tt.user, tt.owner, err, got, want)
				}
				assertRule(t, err, tokens.ValidateLease(tt.user, tt.owner))
				if tt.user == "" {
					return
				}
				// The refused lease recorded nothing: the lease is still free.
				if held, err := l.AcquireLease(t.Context(), tt.user, "b", t0, at(30*time.Second)); err != nil || !held {
					t.Errorf("AcquireLease(%q, b) after the refused lease = %v, %v; want true, nil", tt.user, held, err)
				}
			})
		}
	})

	t.Run("ReleaseEmpty", func(t *testing.T) {
		l := open(t)
		if held, err := l.AcquireLease(t.Context(), user, "a", t0, at(30*time.Second)); err != nil || !held {
			t.Fatalf("AcquireLease(a) = %v, %v; want true, nil", held, err)
		}
		for _, tt := range []struct{ user, owner string }{{"", "a"}, {user, ""}, {"", ""}} {
			if err := l.ReleaseLease(t.Context(), tt.user, tt.owner); err != nil {
				t.Errorf("ReleaseLease(%q, %q) error = %v, want nil", tt.user, tt.owner, err)
			}
		}
		if held, err := l.AcquireLease(t.Context(), user, "b", at(time.Second), at(31*time.Second)); err != nil || held {
			t.Errorf("AcquireLease(b) = %v, %v; want a's lease still held", held, err)
		}
	})

	t.Run("ContextEnded", func(t *testing.T) {
		l := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := l.AcquireLease(ctx, user, "a", t0, at(30*time.Second)); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("AcquireLease(ended context) error = %v, want code %q", err, tokens.EUNAVAILABLE)
		}
		if err := l.ReleaseLease(ctx, user, "a"); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("ReleaseLease(ended context) error = %v, want code %q", err, tokens.EUNAVAILABLE)
		}
		if held, err := l.AcquireLease(t.Context(), user, "b", t0, at(30*time.Second)); err != nil || !held {
			t.Errorf("AcquireLease(b) = %v, %v; want true, nil: the ended lease must record nothing", held, err)
		}
	})
}
