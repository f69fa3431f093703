package tokens_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// closeInBackground calls svc.Close(ctx) in a goroutine of its own and returns
// the channel that receives its answer.
func closeInBackground(ctx context.Context, svc *tokens.Service) <-chan error {
	c := make(chan error, 1)
	go func() { c <- svc.Close(ctx) }()
	return c
}

// assertClosing fails the test when Close has answered already.
func assertClosing(tb testing.TB, closed <-chan error) {
	tb.Helper()
	select {
	case err := <-closed:
		tb.Fatalf("Close returned %v while work was in flight; want it to wait", err)
	default:
	}
}

func TestService_Close(t *testing.T) {
	t.Run("RotatedRefreshInFlight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "bob")
			_, first := h.mustLink(t, "alice")
			// LWA has rotated alice's refresh token; its answer is on the way
			// when the caller gives up and the broker is told to stop.
			release := h.lwa.holdAnswers()
			ctx, cancel := context.WithCancel(t.Context())
			res := make(chan error, 1)
			go func() { _, err := h.refresh(ctx, "alice"); res <- err }()
			synctest.Wait()
			assertCount(t, "answers held", h.lwa.held.Load(), 1)
			cancel()
			assertCode(t, <-res, tokens.EUNAVAILABLE)

			closed := closeInBackground(context.Background(), h.svc)
			synctest.Wait()
			assertClosing(t, closed)

			// No new refresh or exchange starts; a fresh token is still handed out.
			refreshes, exchanges := h.lwa.refreshes.Load(), h.lwa.exchanges.Load()
			_, err := h.refresh(t.Context(), "bob")
			assertCode(t, err, tokens.EUNAVAILABLE)
			_, err = h.exchange(t.Context(), "carol", h.lwa.newCode("carol"))
			assertCode(t, err, tokens.EUNAVAILABLE)
			assertCount(t, "LWA refreshes while closing", h.lwa.refreshes.Load(), refreshes)
			assertCount(t, "LWA exchanges while closing", h.lwa.exchanges.Load(), exchanges)
			h.mustToken(t, "alice")

			release()
			if err := <-closed; err != nil {
				t.Fatalf("Close() error = %v", err)
			}
			rotated := h.lwa.lastGrant()
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{rotated.RefreshToken}, first.RefreshToken)
			// The next broker on the same store refreshes with the rotated token.
			if _, err := h.newService().Refresh(t.Context(), "alice"); err != nil {
				t.Fatalf("Refresh after Close error = %v, want the rotated token to be stored", err)
			}
		})
	})

	t.Run("ExchangeInFlight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			code := h.lwa.newCode("alice")
			release := h.lwa.holdAnswers()
			ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
			defer cancel()
			_, err := h.exchange(ctx, "alice", code)
			assertCode(t, err, tokens.EUNAVAILABLE)

			closed := closeInBackground(context.Background(), h.svc)
			synctest.Wait()
			assertClosing(t, closed)
			release()
			if err := <-closed; err != nil {
				t.Fatalf("Close() error = %v", err)
			}
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{h.lwa.lastGrant().RefreshToken})
			// Alexa's retry is answered from the stored link.
			if _, err := h.newService().Exchange(t.Context(), "alice", code, "EU"); err != nil {
				t.Fatalf("retry of the code after Close: error = %v", err)
			}
			assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
		})
	})

	t.Run("DeadlinePasses", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			_, first := h.mustLink(t, "alice")
			h.lwa.holdAnswers() // never released: LWA's answer never comes
			ctx, cancel := context.WithCancel(t.Context())
			go h.refresh(ctx, "alice")
			synctest.Wait()
			cancel()

			drain, stop := context.WithTimeout(context.Background(), 10*time.Second)
			defer stop()
			start := time.Now()
			err := h.svc.Close(drain)
			assertCode(t, err, tokens.EUNAVAILABLE)
			if got := time.Since(start); got != 10*time.Second {
				t.Errorf("Close took %v, want the drain time, 10s", got)
			}
			synctest.Wait() // the cut-short refresh has returned
			assertCount(t, "answers held", h.lwa.held.Load(), 0)
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{first.RefreshToken})
		})
	})

	t.Run("Idle", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		if err := h.svc.Close(t.Context()); err != nil {
			t.Fatalf("Close() error = %v", err)
		}
		if err := h.svc.Close(t.Context()); err != nil {
			t.Fatalf("second Close() error = %v", err)
		}
	})
}

func TestService_LateAnswer(t *testing.T) {
	// LWA answers half a store write before the refresh's or exchange's
	// deadline; every link write takes latency. The answer is stored all the
	// same, on the write's own time.
	const latency = 5 * time.Millisecond

	t.Run("Refresh", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			_, first := h.mustLink(t, "alice")
			svc := h.newServiceOf(slowStore{h.store, latency})
			h.lwa.setDelay(tokens.RefreshTimeout - latency/2)
			if _, err := svc.Refresh(t.Context(), "alice"); err != nil {
				t.Fatalf("Refresh error = %v, want LWA's late answer stored", h.saw(err))
			}
			h.lwa.setDelay(0)
			rotated := h.lwa.lastGrant()
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{rotated.AccessToken, rotated.RefreshToken}, first.RefreshToken)
			// The next refresh uses the rotated token, which LWA still honours.
			if _, err := h.refresh(t.Context(), "alice"); err != nil {
				t.Fatalf("next Refresh error = %v", err)
			}
		})
	})

	t.Run("Refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "alice")
			n := h.mark()
			svc := h.newServiceOf(slowStore{h.store, latency})
			h.lwa.setRefreshErr(errRefused)
			h.lwa.setDelay(tokens.RefreshTimeout - latency/2)
			_, err := svc.Refresh(t.Context(), "alice")
			assertCode(t, h.saw(err), tokens.ERELINK)
			if got, want := h.stored(t, "alice").State, tokens.StateRelinkRequired; got != want {
				t.Errorf("State = %v, want %v", got, want)
			}
			want := []tokens.Event{ev(tokens.EventRelinkRequired, "alice", tokens.ActorBroker, map[string]any{"reason": tokens.ReasonInvalidGrant})}
			assertEvents(t, h.eventsSince(n), want, time.Time{})
		})
	})

	t.Run("Exchange", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			svc := h.newServiceOf(slowStore{h.store, latency})
			code := h.lwa.newCode("alice")
			h.lwa.setDelay(tokens.ExchangeTimeout - latency/2)
			if _, err := svc.Exchange(t.Context(), "alice", code, "EU"); err != nil {
				t.Fatalf("Exchange error = %v, want LWA's late answer stored", h.saw(err))
			}
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{h.lwa.lastGrant().RefreshToken})
			// Alexa's retry is answered from the stored link.
			if _, err := h.exchange(t.Context(), "alice", code); err != nil {
				t.Fatalf("retry of the code: error = %v", err)
			}
			assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
		})
	})

	t.Run("StoreHangs", func(t *testing.T) {
		// A write that never ends is given up after RecordTimeout.
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "alice")
			svc := h.newServiceOf(slowStore{h.store, time.Hour})
			start := time.Now()
			_, err := svc.Refresh(t.Context(), "alice")
			assertCode(t, h.saw(err), tokens.EUNAVAILABLE)
			if got, want := time.Since(start), tokens.RecordTimeout; got != want {
				t.Errorf("Refresh took %v, want RecordTimeout, %v", got, want)
			}
		})
	})

	t.Run("CloseGivesUp", func(t *testing.T) {
		// Close's deadline cuts the write short, as it does LWA's call.
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "alice")
			svc := h.newServiceOf(slowStore{h.store, time.Hour})
			res := make(chan error, 1)
			go func() {
				_, err := svc.Refresh(context.Background(), "alice")
				res <- h.saw(err)
			}()
			synctest.Wait() // the write waits for the store
			drain, stop := context.WithTimeout(context.Background(), time.Second)
			defer stop()
			assertCode(t, svc.Close(drain), tokens.EUNAVAILABLE)
			synctest.Wait()
			select {
			case err := <-res:
				assertCode(t, err, tokens.EUNAVAILABLE)
			default:
				t.Fatal("Refresh still runs after Close gave up waiting")
			}
		})
	})
}
