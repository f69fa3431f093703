package tokens_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestService_Lease checks the refresh lease across broker instances: Services
// over one store, as processes over one shared table. The cases that wait run
// in a synctest bubble, so that waiting for a lease takes no real time and
// every duration is exact.
func TestService_Lease(t *testing.T) {
	t.Run("OneRefreshesOtherWaits", testLeaseOneRefreshesOtherWaits)
	t.Run("CrashedHolderRunsOut", testLeaseCrashedHolderRunsOut)
	t.Run("CrashedHolderOutlastsRefresh", testLeaseCrashedHolderOutlastsRefresh)
	t.Run("WaiterDeadline", testLeaseWaiterDeadline)
	t.Run("RelinkWhileWaiting", testLeaseRelinkWhileWaiting)
	t.Run("RequireRelinkWhileWaiting", testLeaseRequireRelinkWhileWaiting)
	t.Run("DeletedWhileWaiting", testLeaseDeletedWhileWaiting)
	t.Run("DeletedWhenFreed", testLeaseDeletedWhenFreed)
	t.Run("AcquireFails", testLeaseAcquireFails)
	t.Run("WithoutLeaser", testLeaseWithoutLeaser)
}

// newLeaseHarness returns a harness on the bubble's clock, with alice linked
// and her token expired, and a second Service over the same store: another
// broker instance beside h.svc.
func newLeaseHarness(t *testing.T) (h *harness, other *tokens.Service) {
	t.Helper()
	h = newBubbleHarness(t)
	h.mustLink(t, "alice")
	time.Sleep(ttl)
	return h, h.newService()
}

// holdLease has h.svc take alice's lease and wait at LWA with it, and returns
// the release of LWA's answer and the channel of h.svc's Token answer.
func holdLease(t *testing.T, h *harness) (release func(), first <-chan tokenResult) {
	t.Helper()
	release = h.lwa.blockRefresh()
	t.Cleanup(release)
	first = h.goToken(t.Context(), h.svc, "alice")
	synctest.Wait()
	if got, want := h.lwa.blocked.Load(), int64(1); got != want {
		t.Fatalf("refreshes waiting at LWA = %d, want %d", got, want)
	}
	if _, ok := h.store.leaseOf("alice"); !ok {
		t.Fatalf("no lease of alice while her refresh waits at LWA")
	}
	return release, first
}

// newCrashedLease returns a lease harness in which a broker instance that has
// crashed holds alice's lease for left from start, now: it never refreshes, and
// never releases the lease.
func newCrashedLease(t *testing.T, left time.Duration) (h *harness, start time.Time) {
	t.Helper()
	h, _ = newLeaseHarness(t)
	start = time.Now()
	if held, err := h.store.AcquireLease(t.Context(), "alice", "crashed", start, start.Add(left)); err != nil || !held {
		t.Fatalf("AcquireLease(crashed) = %v, %v", held, err)
	}
	return h, start
}

// newLeaseRace returns a lease harness in which h.svc holds alice's lease and
// waits at LWA, and another instance waits for the lease: release lets LWA
// answer the holder, whose answer first receives, and second receives the
// waiter's.
func newLeaseRace(t *testing.T) (h *harness, release func(), first, second <-chan tokenResult) {
	t.Helper()
	h, other := newLeaseHarness(t)
	release, first = holdLease(t, h)
	return h, release, first, waitBehind(t, h, other)
}

// waitBehind has other ask for alice's token while h.svc holds her lease, and
// returns the channel of other's answer once other waits for the lease.
func waitBehind(t *testing.T, h *harness, other *tokens.Service) <-chan tokenResult {
	t.Helper()
	c := h.goToken(t.Context(), other, "alice")
	synctest.Wait()
	assertWaiting(t, c)
	return c
}

// assertWaiting fails the test when the waiting instance, whose answer c
// receives, has answered already.
func assertWaiting(t *testing.T, c <-chan tokenResult) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("the waiting instance answered %v, %v while the lease is held; want it to wait", r.tok, r.err)
	default:
	}
}

// assertNoLease fails the test when somebody holds alice's lease.
func assertNoLease(t *testing.T, h *harness) {
	t.Helper()
	if l, ok := h.store.leaseOf("alice"); ok {
		t.Errorf("alice's lease is held by %q until %v, want it released", l.owner, l.until)
	}
}

// testLeaseOneRefreshesOtherWaits checks that while one instance refreshes,
// another waits for its result and hands out the same token: LWA is asked once.
func testLeaseOneRefreshesOtherWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, release, first, second := newLeaseRace(t)
		time.Sleep(5 * time.Second) // the other instance polls meanwhile
		synctest.Wait()
		assertWaiting(t, second)
		assertCount(t, "LWA refreshes while the lease is held", h.lwa.refreshes.Load(), 1)

		release()
		a, b := <-first, <-second
		if a.err != nil || b.err != nil {
			t.Fatalf("Token errors = %v, %v; want none", a.err, b.err)
		}
		want := h.lwa.lastGrant().AccessToken
		if a.tok.AccessToken != want || b.tok.AccessToken != want {
			t.Errorf("AccessTokens = %s, %s; want both %s", a.tok.AccessToken.Reveal(), b.tok.AccessToken.Reveal(), want.Reveal())
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
		assertNoLease(t, h)
	})
}

// testLeaseCrashedHolderRunsOut checks that the lease of a holder that crashed,
// and so never releases it, is taken over by a waiter once it has run out.
func testLeaseCrashedHolderRunsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const left = 5 * time.Second // of the crashed holder's lease
		h, start := newCrashedLease(t, left)
		tok := h.mustToken(t, "alice")
		if waited := time.Since(start); waited <= left || waited > left+tokens.LeasePoll {
			t.Errorf("Token answered after %v, want after the lease ran out at %v, within %v", waited, left, tokens.LeasePoll)
		}
		if got, want := tok.AccessToken, h.lwa.lastGrant().AccessToken; got != want {
			t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
		assertNoLease(t, h)
	})
}

// testLeaseCrashedHolderOutlastsRefresh checks a crashed holder's lease of
// LeaseTTL, longer than a refresh may take: the waiter gives up with
// EUNAVAILABLE after RefreshTimeout, and the next call after the lease ran out
// refreshes.
func testLeaseCrashedHolderOutlastsRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, start := newCrashedLease(t, tokens.LeaseTTL)
		_, err := h.token(t.Context(), "alice")
		assertCode(t, err, tokens.EUNAVAILABLE)
		if got, want := time.Since(start), tokens.RefreshTimeout; got != want {
			t.Errorf("Token gave up after %v, want %v", got, want)
		}
		assertCount(t, "LWA refreshes while the crashed lease stands", h.lwa.refreshes.Load(), 0)

		time.Sleep(tokens.LeaseTTL - time.Since(start) + time.Nanosecond)
		h.mustToken(t, "alice")
		assertCount(t, "LWA refreshes after the lease ran out", h.lwa.refreshes.Load(), 1)
		assertNoLease(t, h)
	})
}

// testLeaseWaiterDeadline checks that a waiter whose own deadline passes
// answers EUNAVAILABLE then, while its refresh goes on waiting and takes the
// holder's result.
func testLeaseWaiterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, other := newLeaseHarness(t)
		release, first := holdLease(t, h)
		const deadline = 3 * time.Second
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		start := time.Now()
		_, err := h.tokenOf(ctx, other, "alice")
		assertCode(t, err, tokens.EUNAVAILABLE)
		if got := time.Since(start); got != deadline {
			t.Errorf("Token gave up after %v, want at its deadline %v", got, deadline)
		}

		release()
		if r := <-first; r.err != nil {
			t.Fatalf("holder's Token error = %v", r.err)
		}
		time.Sleep(tokens.LeasePoll) // the waiter's refresh looks again, and ends
		synctest.Wait()
		before := h.store.gets.Load()
		if got, want := h.mustTokenOf(t, other).AccessToken, h.lwa.lastGrant().AccessToken; got != want {
			t.Errorf("AccessToken after the holder's refresh = %s, want %s", got.Reveal(), want.Reveal())
		}
		assertCount(t, "store reads of a fresh Token call", h.store.gets.Load()-before, 1)
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
		assertNoLease(t, h)
	})
}

// testLeaseRelinkWhileWaiting checks that when the holder's refresh is refused,
// the waiter sees the link marked RELINK_REQUIRED without asking LWA itself.
func testLeaseRelinkWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, release, first, second := newLeaseRace(t)

		h.lwa.setRefreshErr(errRefused)
		release()
		assertCode(t, (<-first).err, tokens.ERELINK)
		assertCode(t, (<-second).err, tokens.ERELINK)
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
		if got, want := h.stored(t, "alice").State, tokens.StateRelinkRequired; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
		assertNoLease(t, h)
	})
}

// testLeaseRequireRelinkWhileWaiting checks that a waiter answers ERELINK at
// its next look when the link is marked RELINK_REQUIRED meanwhile.
func testLeaseRequireRelinkWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, release, first, second := newLeaseRace(t)
		if err := h.newService().RequireRelink(t.Context(), "alice"); err != nil {
			t.Fatalf("RequireRelink error = %v", err)
		}
		start := time.Now()
		assertCode(t, (<-second).err, tokens.ERELINK)
		if waited := time.Since(start); waited > tokens.LeasePoll {
			t.Errorf("waiter saw the relink after %v, want within %v", waited, tokens.LeasePoll)
		}
		release()
		<-first
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
	})
}

// testLeaseDeletedWhileWaiting checks that when the link is deleted while the
// holder refreshes and a waiter polls, both answer ErrLinkNotFound, and the
// link stays deleted.
func testLeaseDeletedWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, release, first, second := newLeaseRace(t)
		if err := h.svc.Delete(t.Context(), "alice", tokens.Deletion{Actor: "ops"}); err != nil {
			t.Fatalf("Delete error = %v", err)
		}
		if err := (<-second).err; !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("waiter's Token error = %v, want ErrLinkNotFound", err)
		}
		release()
		if err := (<-first).err; !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("holder's Token error = %v, want ErrLinkNotFound", err)
		}
		if _, err := h.store.GetLink(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("link after delete: error = %v, want ErrLinkNotFound", err)
		}
		assertNoLease(t, h)
	})
}

// testLeaseDeletedWhenFreed checks the waiter that takes the lease a failed
// holder released, after the link was deleted: it answers ErrLinkNotFound and
// releases the lease again.
func testLeaseDeletedWhenFreed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, release, first, second := newLeaseRace(t)
		h.lwa.setRefreshErr(errTransient)
		if err := h.svc.Delete(t.Context(), "alice", tokens.Deletion{Actor: "ops"}); err != nil {
			t.Fatalf("Delete error = %v", err)
		}
		release()
		assertCode(t, (<-first).err, tokens.EUNAVAILABLE)
		if err := (<-second).err; !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("waiter's Token error = %v, want ErrLinkNotFound", err)
		}
		assertNoLease(t, h)
	})
}

// testLeaseAcquireFails checks that a lease that cannot be taken fails the
// refresh with the store's error, and LWA is not asked.
func testLeaseAcquireFails(t *testing.T) {
	h := newHarness(t)
	h.mustLink(t, "alice")
	h.clock.Advance(ttl)
	h.store.failLeases(tokens.Errorf(tokens.EUNAVAILABLE, "memstore: leases unreachable"))
	_, err := h.token(t.Context(), "alice")
	assertCode(t, err, tokens.EUNAVAILABLE)
	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)

	h.store.failLeases(nil)
	h.mustToken(t, "alice")
	assertCount(t, "LWA refreshes once leases work", h.lwa.refreshes.Load(), 1)
}

// testLeaseWithoutLeaser checks that the tokens of a store that is no Leaser (a
// store of one process) are refreshed without a lease.
func testLeaseWithoutLeaser(t *testing.T) {
	h := newHarness(t)
	h.svc = h.newServiceOf(storeOnly{h.store})
	h.mustLink(t, "alice")
	h.clock.Advance(ttl)
	tok := h.mustToken(t, "alice")
	if got, want := tok.AccessToken, h.lwa.lastGrant().AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
	}
	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
	if _, ok := h.store.leaseOf("alice"); ok {
		t.Errorf("a store without Leaser got a lease")
	}
}
