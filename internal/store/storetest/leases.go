package storetest

import (
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
//   - AcquireLease with an empty user id or owner is an EINVALID error.
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
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := open(t).AcquireLease(t.Context(), tt.user, tt.owner, t0, at(30*time.Second))
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("AcquireLease(%q, %q) error = %v (code %q), want code %q", tt.user, tt.owner, err, got, want)
				}
			})
		}
	})
}
