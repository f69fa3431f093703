package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// SweepingStore is a store that removes its expired code claims: a
// tokens.Store that is also a tokens.ClaimSweeper.
type SweepingStore interface {
	tokens.Store
	tokens.ClaimSweeper
}

// RunClaimSweeper runs the conformance suite of tokens.ClaimSweeper against the
// stores that open returns, new and empty for each subtest; open registers
// whatever cleanup the store needs with t.Cleanup.
//
// Beyond the doc comment of tokens.ClaimSweeper, the suite pins down:
//
//   - A removed claim is gone: its code is free again, also when the claim's
//     expiry is still ahead of the store's own clock (the sweeper compares
//     the time it is given).
//   - A claim that expires at or after before stays, and keeps its owner.
//   - A sweep of an empty store, or one with nothing expired, removes nothing.
//   - A sweep of many claims removes all that expired, and only those (a store
//     that sweeps in batches runs the suite with batches smaller than that).
//   - A context that has ended is an EUNAVAILABLE error, and removes nothing.
func RunClaimSweeper(t *testing.T, open func(t *testing.T) SweepingStore) {
	t.Helper()
	// Claims expire in the store's future (by the store's clock they all
	// stand), so that only the sweep can free a code.
	base := time.Now().Add(24 * time.Hour)
	at := func(d time.Duration) time.Time { return base.Add(d) }

	claim := func(t *testing.T, s SweepingStore, code, user string, expires time.Time) {
		t.Helper()
		if owner, err := s.ClaimCode(t.Context(), code, user, expires); err != nil || owner != user {
			t.Fatalf("ClaimCode(%q, %q) = %q, %v; want %q, nil", code, user, owner, err, user)
		}
	}
	// owner returns who owns code, by claiming it for "probe".
	owner := func(t *testing.T, s SweepingStore, code string) string {
		t.Helper()
		o, err := s.ClaimCode(t.Context(), code, "probe", at(48*time.Hour))
		if err != nil {
			t.Fatalf("ClaimCode(%q, probe) error = %v", code, err)
		}
		return o
	}
	sweep := func(t *testing.T, s SweepingStore, before time.Time, want int) {
		t.Helper()
		n, err := s.DeleteExpiredClaims(t.Context(), before)
		if err != nil {
			t.Fatalf("DeleteExpiredClaims error = %v", err)
		}
		if n != want {
			t.Errorf("DeleteExpiredClaims removed %d claims, want %d", n, want)
		}
	}

	t.Run("Empty", func(t *testing.T) {
		sweep(t, open(t), at(0), 0)
	})

	t.Run("RemovesExpired", func(t *testing.T) {
		s := open(t)
		claim(t, s, "code-1", "alice", at(-2*time.Hour))
		claim(t, s, "code-2", "bob", at(-time.Nanosecond))
		claim(t, s, "code-3", "carol", at(0))
		claim(t, s, "code-4", "dave", at(time.Hour))

		sweep(t, s, at(0), 2)
		sweep(t, s, at(0), 0)
		for _, c := range []struct{ code, want string }{
			{"code-1", "probe"}, // removed, free again
			{"code-2", "probe"},
			{"code-3", "carol"}, // expires at before: stays
			{"code-4", "dave"},
		} {
			if got := owner(t, s, c.code); got != c.want {
				t.Errorf("owner of %s after the sweep = %q, want %q", c.code, got, c.want)
			}
		}
	})

	t.Run("NothingExpired", func(t *testing.T) {
		s := open(t)
		claim(t, s, "code-1", "alice", at(time.Hour))
		sweep(t, s, at(0), 0)
		if got := owner(t, s, "code-1"); got != "alice" {
			t.Errorf("owner of code-1 = %q, want alice", got)
		}
	})

	t.Run("ManyClaims", func(t *testing.T) {
		const claims = 50
		s := open(t)
		expired := 0
		for i := range claims {
			expires := at(time.Hour)
			if i%3 != 0 {
				expires = at(-time.Hour)
				expired++
			}
			claim(t, s, fmt.Sprintf("code-%04d", i), "alice", expires)
		}
		sweep(t, s, at(0), expired)
		for i := range claims {
			want := "alice"
			if i%3 != 0 {
				want = "probe"
			}
			if got := owner(t, s, fmt.Sprintf("code-%04d", i)); got != want {
				t.Errorf("owner of code-%04d = %q, want %q", i, got, want)
			}
		}
	})

	t.Run("ContextEnded", func(t *testing.T) {
		s := open(t)
		claim(t, s, "code-1", "alice", at(-time.Hour))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		n, err := s.DeleteExpiredClaims(ctx, at(0))
		if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want || n != 0 {
			t.Errorf("DeleteExpiredClaims(ended context) = %d, %v (code %q); want 0 and code %q", n, err, got, want)
		}
		if got := owner(t, s, "code-1"); got != "alice" {
			t.Errorf("owner of code-1 = %q, want alice: the ended sweep must remove nothing", got)
		}
	})
}
