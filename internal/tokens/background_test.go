package tokens_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// background runs svc.RefreshInBackground until the returned stop is called or
// the test ends; stop cancels it and waits for it to return.
func background(tb testing.TB, svc *tokens.Service, window, interval time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RefreshInBackground(ctx, window, interval)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	tb.Cleanup(stop) // also when the test fails, so that a bubble can end
	return stop
}

func TestService_RefreshInBackground(t *testing.T) {
	const (
		window   = 2 * time.Hour
		interval = time.Minute
	)

	t.Run("UsedLinks", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			begin := time.Now()
			// alice is asked for at 0 and 90m, carol at 0 only; bob was linked
			// by another instance and never asked for.
			h.mustLink(t, "alice")
			h.mustLink(t, "carol")
			other := h.newService()
			if _, err := other.Exchange(t.Context(), "bob", h.lwa.newCode("bob"), ""); err != nil {
				t.Fatalf("Exchange(bob) error = %v", err)
			}
			h.mustToken(t, "alice")
			h.mustToken(t, "carol")
			stop := background(t, h.svc, window, interval)

			counts := map[string]map[int]int{"alice": {}, "bob": {}, "carol": {}}
			// Look half-way between the rounds: at counts[user][m], m minutes and
			// 30 seconds have passed.
			time.Sleep(interval / 2)
			for minute := 1; minute <= 360; minute++ {
				time.Sleep(interval)
				synctest.Wait()
				now := time.Now()
				for user := range counts {
					counts[user][minute] = h.lwa.subjectRefreshes(user)
				}
				if minute == 90 {
					before := h.lwa.refreshes.Load()
					h.mustToken(t, "alice")
					assertCount(t, "LWA refreshes of a Token call at 90m", h.lwa.refreshes.Load()-before, 0)
				}
				// While in use, the token never expires.
				for user, until := range map[string]time.Duration{"alice": 90*time.Minute + window, "carol": window} {
					if now.Sub(begin) >= until {
						continue
					}
					if exp := h.stored(t, user).AccessTokenExpiresAt; !exp.After(now) {
						t.Fatalf("%v: %s's token, in use, expired at %v", now.Sub(begin), user, exp.Sub(begin))
					}
				}
			}

			if got := counts["bob"][360]; got != 0 {
				t.Errorf("bob, never asked for: %d background refreshes, want 0", got)
			}
			if got := counts["carol"][119]; got < 1 {
				t.Errorf("carol: %d refreshes within the window, want at least 1", got)
			}
			if got, want := counts["carol"][360], counts["carol"][130]; got != want {
				t.Errorf("carol, not asked for within the window: %d refreshes at 6h, want %d as at 2h10m", got, want)
			}
			if got, want := counts["alice"][200], counts["alice"][130]; got <= want {
				t.Errorf("alice, asked for at 90m: %d refreshes at 3h20m, want more than the %d at 2h10m", got, want)
			}
			if got, want := counts["alice"][360], counts["alice"][220]; got != want {
				t.Errorf("alice, not asked for since 90m: %d refreshes at 6h, want %d as at 3h40m", got, want)
			}
			if got, want := h.lwa.refreshes.Load(), int64(counts["alice"][360]+counts["carol"][360]); got != want {
				t.Errorf("LWA refreshes = %d, want %d (alice's and carol's only)", got, want)
			}

			// Asked for again, carol is refreshed on demand and again kept fresh.
			now := time.Now()
			if exp := h.stored(t, "carol").AccessTokenExpiresAt; exp.After(now) {
				t.Fatalf("carol's idle token expires at %v, after now %v: want it expired", exp, now)
			}
			h.mustToken(t, "carol")
			if got, want := h.lwa.subjectRefreshes("carol"), counts["carol"][360]+1; got != want {
				t.Errorf("carol after Token: %d refreshes, want %d", got, want)
			}
			time.Sleep(2 * ttl)
			synctest.Wait()
			if got, want := h.lwa.subjectRefreshes("carol"), counts["carol"][360]+2; got < want {
				t.Errorf("carol 2h after Token: %d refreshes, want at least %d", got, want)
			}
			stop()
		})
	})

	t.Run("AheadOfUse", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "alice")
			h.mustToken(t, "alice")
			background(t, h.svc, window, interval)
			for i := range 3 {
				// The last moment alice's token is fresh: the round before has
				// refreshed it already, so that no caller waits for LWA.
				exp := h.stored(t, "alice").AccessTokenExpiresAt
				time.Sleep(time.Until(exp.Add(-ahead - time.Second)))
				synctest.Wait()
				if got := h.stored(t, "alice").AccessTokenExpiresAt; !got.After(exp) {
					t.Fatalf("expiry %d: token not refreshed %v before it expires", i+1, ahead+time.Second)
				}
				before := h.lwa.refreshes.Load()
				h.mustToken(t, "alice")
				assertCount(t, "LWA refreshes of a Token call", h.lwa.refreshes.Load()-before, 0)
			}
		})
	})

	t.Run("LinkedNeverAsked", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "dave")
			background(t, h.svc, window, interval)
			time.Sleep(2 * window)
			synctest.Wait()
			if got := h.lwa.subjectRefreshes("dave"); got != 0 {
				t.Errorf("dave, linked but never asked for: %d background refreshes, want 0", got)
			}
		})
	})

	t.Run("Cancel", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "alice")
			h.mustToken(t, "alice")
			stop := background(t, h.svc, window, interval)
			// Stop in the round that refreshes alice, while its refresh may
			// still wait for its jitter.
			time.Sleep(ttl - ahead + time.Second)
			stop() // returns only once the loop and its refreshes are done
			n := h.lwa.refreshes.Load()
			time.Sleep(3 * ttl)
			synctest.Wait()
			assertCount(t, "LWA refreshes after cancel", h.lwa.refreshes.Load(), n)
		})
	})

	t.Run("SlowLWA", func(t *testing.T) {
		// 200 users in use, every one due each round, and LWA takes 3 s per
		// refresh: the work in flight stays bounded however many rounds pass.
		synctest.Test(t, func(t *testing.T) {
			const (
				users    = 200
				rounds   = 20
				interval = 30 * time.Second
			)
			h := newBubbleHarness(t)
			h.lwa.ttl = ahead + 2*interval // due in every round, yet fresh for Token
			for i := range users {
				h.mustLink(t, fmt.Sprintf("user-%03d", i))
				h.mustToken(t, fmt.Sprintf("user-%03d", i))
			}
			h.lwa.setDelay(3 * time.Second)
			base := runtime.NumGoroutine()
			stop := background(t, h.svc, window, interval)
			most := 0
			for round := 1; round <= rounds; round++ {
				time.Sleep(interval)
				synctest.Wait()
				n := runtime.NumGoroutine() - base
				most = max(most, n)
				if round == 6 {
					t.Logf("after 3 minutes (6 rounds): %d goroutines", n)
				}
			}
			t.Logf("%d users, LWA answering in 3s: at most %d goroutines over %d rounds (%d refreshes)",
				users, most, rounds, h.lwa.refreshes.Load())
			if most > 20 {
				t.Errorf("background refresh ran %d goroutines, want at most 20", most)
			}
			// Bounded, yet busy: four refreshes of 3 s at a time all along.
			if got, want := h.lwa.refreshes.Load(), int64(rounds*interval/(3*time.Second)*4*9/10); got < want {
				t.Errorf("LWA refreshes = %d, want at least %d", got, want)
			}
			stop()
			if err := h.svc.Close(t.Context()); err != nil { // the refreshes in flight finish
				t.Errorf("Close() error = %v", err)
			}
		})
	})

	t.Run("Off", func(t *testing.T) {
		for _, tt := range []struct {
			name             string
			window, interval time.Duration
		}{
			{"ZeroWindow", 0, time.Minute},
			{"ZeroInterval", time.Hour, 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					h := newBubbleHarness(t)
					h.mustLink(t, "alice")
					h.mustToken(t, "alice")
					done := make(chan struct{})
					go func() {
						defer close(done)
						h.svc.RefreshInBackground(t.Context(), tt.window, tt.interval)
					}()
					synctest.Wait()
					select {
					case <-done:
					default:
						t.Fatalf("RefreshInBackground(%v, %v) did not return at once", tt.window, tt.interval)
					}

					// Nobody prunes the users who asked for a token, so
					// none is remembered, alice included.
					for i := range 100 {
						user := fmt.Sprintf("user-%03d", i)
						h.mustLink(t, user)
						h.mustToken(t, user)
					}
					if got := tokens.UsersInUse(h.svc); got != 0 {
						t.Errorf("users remembered with background refresh off = %d, want 0", got)
					}
				})
			})
		}
	})

	t.Run("UsersInUse", func(t *testing.T) {
		// With background refresh on, the users who asked are remembered
		// until they stop asking for the window.
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			background(t, h.svc, window, interval)
			for _, user := range []string{"alice", "bob"} {
				h.mustLink(t, user)
				h.mustToken(t, user)
			}
			if got, want := tokens.UsersInUse(h.svc), 2; got != want {
				t.Errorf("users remembered = %d, want %d", got, want)
			}
			time.Sleep(window + 2*interval)
			synctest.Wait()
			if got := tokens.UsersInUse(h.svc); got != 0 {
				t.Errorf("users remembered after the window = %d, want 0", got)
			}
		})
	})
}
