package tokens_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestService_Exchange(t *testing.T) {
	t.Run("Links", func(t *testing.T) {
		h := newHarness(t)
		code := h.lwa.newCode("alice")
		got, err := h.exchange(t.Context(), "alice", code)
		if err != nil {
			t.Fatalf("Exchange error = %v", err)
		}
		grant := h.lwa.lastGrant()
		now := h.clock.Now()
		want := &tokens.Link{
			UserID: "alice", SkillID: tokens.DefaultSkillID, State: tokens.StateLinked, Region: "EU",
			LinkedAt: now, LastRefreshedAt: now, AccessTokenExpiresAt: now.Add(ttl),
			CodeHash: tokens.CodeHash(code),
			Tokens:   got.Tokens, Version: got.Version,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Exchange link (-want +got):\n%s", diff)
		}
		if got.Version <= 0 {
			t.Errorf("Version = %d, want > 0", got.Version)
		}
		if diff := cmp.Diff(got, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link differs from the returned one (-returned +stored):\n%s", diff)
		}
		if strings.Contains(got.CodeHash, code.Reveal()) {
			t.Errorf("CodeHash %q holds the code", got.CodeHash)
		}
		h.assertSealed(t, got, []tokens.Secret{grant.AccessToken, grant.RefreshToken})
		if _, err := h.sealer.Open("bob", got.Tokens); err == nil {
			t.Errorf("alice's sealed tokens open for bob")
		}
		assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
	})

	t.Run("RetrySameUser", func(t *testing.T) {
		h := newHarness(t)
		code := h.lwa.newCode("alice")
		first, err := h.exchange(t.Context(), "alice", code)
		if err != nil {
			t.Fatalf("first Exchange error = %v", err)
		}
		h.clock.Advance(time.Minute)
		second, err := h.exchange(t.Context(), "alice", code)
		if err != nil {
			t.Fatalf("second Exchange error = %v", err)
		}
		if diff := cmp.Diff(first, second); diff != "" {
			t.Errorf("retried Exchange link (-first +second):\n%s", diff)
		}
		assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
	})

	t.Run("ConcurrentRetries", func(t *testing.T) {
		h := newHarness(t)
		code := h.lwa.newCode("alice")
		const callers = 20
		links := make([]*tokens.Link, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				l, err := h.exchange(t.Context(), "alice", code)
				if err != nil {
					t.Errorf("caller %d: Exchange error = %v", i, err)
				}
				links[i] = l
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		stored := h.stored(t, "alice")
		for i, l := range links {
			if diff := cmp.Diff(stored, l); diff != "" {
				t.Errorf("caller %d: link (-stored +got):\n%s", i, diff)
			}
		}
		// A caller that read "no link" just before the winner wrote may call
		// LWA, be refused, and find the winner's link: never more than that.
		if n := h.lwa.exchanges.Load(); n < 1 || n > callers {
			t.Errorf("LWA exchanges = %d, want between 1 and %d", n, callers)
		}
	})

	t.Run("OtherUser", func(t *testing.T) {
		h := newHarness(t)
		code := h.lwa.newCode("alice")
		if _, err := h.exchange(t.Context(), "alice", code); err != nil {
			t.Fatalf("Exchange(alice) error = %v", err)
		}
		_, err := h.exchange(t.Context(), "bob", code)
		if !errors.Is(err, tokens.ErrInvalidGrant) {
			t.Fatalf("Exchange(bob, alice's code) error = %v, want ErrInvalidGrant", err)
		}
		assertCode(t, err, tokens.EINVALID)
		assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
		if _, err := h.store.GetLink(t.Context(), "bob"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("bob's link: error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("OtherUserFirst", func(t *testing.T) {
		// The code was claimed for bob, whose exchange failed; alice's
		// hand-over of the same code must still be refused.
		h := newHarness(t)
		code := h.lwa.newCode("alice")
		h.lwa.setExchangeErr(errTransient)
		if _, err := h.exchange(t.Context(), "bob", code); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Fatalf("Exchange(bob) error = %v, want EUNAVAILABLE", err)
		}
		h.lwa.setExchangeErr(nil)
		if _, err := h.exchange(t.Context(), "alice", code); !errors.Is(err, tokens.ErrInvalidGrant) {
			t.Fatalf("Exchange(alice, bob's code) error = %v, want ErrInvalidGrant", err)
		}
		assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
	})

	t.Run("Refused", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			code func(t *testing.T, h *harness) tokens.Secret
		}{
			{"UnknownCode", func(t *testing.T, h *harness) tokens.Secret { return "ANunknowncode" }},
			{"UsedCode", func(t *testing.T, h *harness) tokens.Secret {
				code := h.lwa.newCode("alice")
				if _, err := h.lwa.Exchange(context.Background(), code); err != nil {
					t.Fatalf("fake LWA Exchange error = %v", err)
				}
				return code
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := newHarness(t)
				code := tt.code(t, h)
				before := h.lwa.exchanges.Load()
				_, err := h.exchange(t.Context(), "alice", code)
				if !errors.Is(err, tokens.ErrInvalidGrant) {
					t.Fatalf("Exchange error = %v, want ErrInvalidGrant", err)
				}
				assertCode(t, err, tokens.EINVALID)
				assertCount(t, "LWA exchanges", h.lwa.exchanges.Load()-before, 1)
				if _, err := h.store.GetLink(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
					t.Errorf("link after refused exchange: error = %v, want ErrLinkNotFound", err)
				}
			})
		}
	})

	t.Run("Transient", func(t *testing.T) {
		h := newHarness(t)
		code := h.lwa.newCode("alice")
		h.lwa.setExchangeErr(errTransient)
		_, err := h.exchange(t.Context(), "alice", code)
		assertCode(t, err, tokens.EUNAVAILABLE)
		if _, err := h.store.GetLink(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("link after failed exchange: error = %v, want ErrLinkNotFound", err)
		}

		// Alexa retries the same code once LWA is back.
		h.lwa.setExchangeErr(nil)
		l, err := h.exchange(t.Context(), "alice", code)
		if err != nil {
			t.Fatalf("retried Exchange error = %v", err)
		}
		if got, want := l.State, tokens.StateLinked; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
		assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 2)
	})

	t.Run("AnswerAfterCaller", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			code := h.lwa.newCode("alice")
			// LWA has used the code; its answer comes after Alexa's 4 s.
			release := h.lwa.holdAnswers()
			handover := func() (*tokens.Link, error) {
				ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
				defer cancel()
				return h.exchange(ctx, "alice", code)
			}
			start := time.Now()
			_, err := handover()
			assertCode(t, err, tokens.EUNAVAILABLE)
			if got := time.Since(start); got != 4*time.Second {
				t.Errorf("first hand-over answered after %v, want 4s", got)
			}

			// Alexa's retry arrives while the exchange still runs: it waits.
			retry := make(chan error, 1)
			go func() { _, err := handover(); retry <- err }()
			time.Sleep(time.Second)
			synctest.Wait()
			release()
			if err := <-retry; err != nil {
				t.Fatalf("retry while the exchange runs: error = %v", err)
			}
			// And a retry after it is answered from the stored link.
			if _, err := handover(); err != nil {
				t.Fatalf("retry after the exchange: error = %v", err)
			}
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{h.lwa.lastGrant().RefreshToken})
			assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
		})
	})

	t.Run("RetryOnOtherInstance", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			other := h.newService() // another broker instance on the same store
			code := h.lwa.newCode("alice")
			// LWA has used the code; its answer comes after Alexa's 4 s.
			release := h.lwa.holdAnswers()
			handover := func(svc *tokens.Service) (*tokens.Link, error) {
				ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
				defer cancel()
				return svc.Exchange(ctx, "alice", code, "")
			}
			_, err := handover(h.svc)
			assertCode(t, err, tokens.EUNAVAILABLE)

			// Alexa's retry reaches the other instance while the first still
			// exchanges: it waits for that exchange instead of asking LWA, which
			// would refuse the used code (invalid_grant).
			retry := make(chan error, 1)
			go func() { _, err := handover(other); retry <- err }()
			time.Sleep(time.Second)
			synctest.Wait()
			release()
			if err := <-retry; err != nil {
				t.Fatalf("retry on the other instance: error = %v", err)
			}
			assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 1)
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{h.lwa.lastGrant().RefreshToken})
		})
	})

	t.Run("Relink", func(t *testing.T) {
		h := newHarness(t)
		first, _ := h.mustLink(t, "alice")
		h.lwa.revoke("alice")
		h.clock.Advance(ttl)
		_, err := h.token(t.Context(), "alice")
		assertCode(t, err, tokens.ERELINK)
		if got, want := h.stored(t, "alice").State, tokens.StateRelinkRequired; got != want {
			t.Fatalf("State after refused refresh = %v, want %v", got, want)
		}

		code := h.lwa.newCode("alice")
		l, err := h.exchange(t.Context(), "alice", code)
		if err != nil {
			t.Fatalf("Exchange(new code) error = %v", err)
		}
		grant := h.lwa.lastGrant()
		now := h.clock.Now()
		if got, want := l.State, tokens.StateLinked; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
		if got, want := l.CodeHash, tokens.CodeHash(code); got != want {
			t.Errorf("CodeHash = %q, want %q", got, want)
		}
		if !l.LinkedAt.Equal(now) || !l.AccessTokenExpiresAt.Equal(now.Add(ttl)) {
			t.Errorf("LinkedAt, AccessTokenExpiresAt = %v, %v; want %v, %v", l.LinkedAt, l.AccessTokenExpiresAt, now, now.Add(ttl))
		}
		if l.Version <= first.Version {
			t.Errorf("Version = %d, want > %d", l.Version, first.Version)
		}
		if diff := cmp.Diff(l, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link (-returned +stored):\n%s", diff)
		}
		if got, want := h.mustToken(t, "alice").AccessToken, grant.AccessToken; got != want {
			t.Errorf("Token after relink = %s, want the new grant's", got.Reveal())
		}
	})

	t.Run("Replace", func(t *testing.T) {
		h := newHarness(t)
		_, old := h.mustLink(t, "alice")
		h.clock.Advance(time.Minute)
		l, grant := h.mustLink(t, "alice")
		h.assertSealed(t, l, []tokens.Secret{grant.AccessToken, grant.RefreshToken}, old.AccessToken, old.RefreshToken)
		if got, want := h.mustToken(t, "alice").AccessToken, grant.AccessToken; got != want {
			t.Errorf("Token = %s, want the newest grant's", got.Reveal())
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range []struct {
			name, user string
			code       tokens.Secret
		}{
			{"NoUser", "", "ANfakecode"},
			{"NoCode", "alice", ""},
			{"Neither", "", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := newHarness(t)
				_, err := h.exchange(t.Context(), tt.user, tt.code)
				assertCode(t, err, tokens.EINVALID)
				assertCount(t, "LWA exchanges", h.lwa.exchanges.Load(), 0)
			})
		}
	})
}
