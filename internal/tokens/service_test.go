package tokens_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

const (
	// ttl is the lifetime of the fake LWA's access tokens, as on LWA.
	ttl = time.Hour
	// ahead is the service's RefreshAhead in these tests: the default.
	ahead = tokens.DefaultRefreshAhead
)

// epoch is where the fake clock starts.
var epoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// errTransient is what a fake LWA that cannot be reached answers.
var errTransient = tokens.Errorf(tokens.EUNAVAILABLE, "fake lwa: connection refused")

// errRefused is what a fake LWA that refuses a grant answers.
var errRefused = fmt.Errorf("fake lwa: %w", tokens.ErrInvalidGrant)

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokens.Store { return newMemStore() })
}

// harness is a Service over the in-memory fakes and the real sealer, with a
// fake clock. It records every error the service returned, and at the end of
// the test fails it when any error or log line holds a code or token.
type harness struct {
	svc    *tokens.Service
	store  *memStore
	lwa    *fakeLWA
	clock  *fakeClock
	sealer *seal.Sealer
	logs   *syncBuffer

	mu   sync.Mutex
	errs []string
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	key, err := seal.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{
		store:  newMemStore(),
		clock:  newFakeClock(epoch),
		sealer: sealer,
		logs:   &syncBuffer{},
	}
	h.lwa = newFakeLWA(h.clock.Now, ttl)
	h.store.now = h.clock.Now
	h.svc = h.newService()
	tb.Cleanup(func() { h.assertNoSecrets(tb) })
	return h
}

// newService returns another Service over the harness's store, sealer and LWA,
// logging to the same buffer: another broker instance.
func (h *harness) newService() *tokens.Service {
	svc := tokens.NewService(h.store, h.sealer, h.lwa)
	svc.Now = h.clock.Now
	svc.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return svc
}

// useTime puts now in place of the fake clock everywhere, for synctest
// bubbles; call it before anything runs.
func (h *harness) useTime(now func() time.Time) {
	h.svc.Now, h.lwa.now, h.store.now = now, now, now
}

// saw records err so that assertNoSecrets checks its printed forms.
func (h *harness) saw(err error) error {
	if err != nil {
		h.mu.Lock()
		h.errs = append(h.errs, fmt.Sprintf("%v\n%+v\n%#v\n%s", err, err, err, tokens.ErrorMessage(err)))
		h.mu.Unlock()
	}
	return err
}

func (h *harness) exchange(ctx context.Context, userID string, code tokens.Secret) (*tokens.Link, error) {
	l, err := h.svc.Exchange(ctx, userID, code, "EU")
	return l, h.saw(err)
}

func (h *harness) token(ctx context.Context, userID string) (tokens.Token, error) {
	tok, err := h.svc.Token(ctx, userID)
	return tok, h.saw(err)
}

func (h *harness) refresh(ctx context.Context, userID string) (*tokens.Link, error) {
	l, err := h.svc.Refresh(ctx, userID)
	return l, h.saw(err)
}

// mustLink links userID with a new code and returns the link and its grant.
func (h *harness) mustLink(tb testing.TB, userID string) (*tokens.Link, tokens.Grant) {
	tb.Helper()
	l, err := h.exchange(tb.Context(), userID, h.lwa.newCode(userID))
	if err != nil {
		tb.Fatalf("Exchange(%q) error = %v", userID, err)
	}
	return l, h.lwa.lastGrant()
}

func (h *harness) mustToken(tb testing.TB, userID string) tokens.Token {
	tb.Helper()
	tok, err := h.token(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("Token(%q) error = %v", userID, err)
	}
	return tok
}

// stored returns the stored link of userID, failing the test when there is none.
func (h *harness) stored(tb testing.TB, userID string) *tokens.Link {
	tb.Helper()
	l, err := h.store.GetLink(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("store.GetLink(%q) error = %v", userID, err)
	}
	return l
}

// opened returns the plaintext of l's sealed tokens. The test does not know the
// service's plaintext layout; it only looks for tokens in it.
func (h *harness) opened(tb testing.TB, l *tokens.Link) []byte {
	tb.Helper()
	b, err := h.sealer.Open(l.UserID, l.Tokens)
	if err != nil {
		tb.Fatalf("Open(sealed tokens of %q) error = %v", l.UserID, err)
	}
	return b
}

// assertSealed checks that l's sealed tokens hold every secret in holds and none
// in lacks, and that the ciphertext holds none of them in clear.
func (h *harness) assertSealed(tb testing.TB, l *tokens.Link, holds []tokens.Secret, lacks ...tokens.Secret) {
	tb.Helper()
	plain := h.opened(tb, l)
	for _, s := range holds {
		if s == "" {
			tb.Fatalf("assertSealed: empty secret to look for")
		}
		if !bytes.Contains(plain, []byte(s.Reveal())) {
			tb.Errorf("sealed tokens of %q lack %s", l.UserID, s.Reveal())
		}
	}
	for _, s := range lacks {
		if bytes.Contains(plain, []byte(s.Reveal())) {
			tb.Errorf("sealed tokens of %q still hold %s", l.UserID, s.Reveal())
		}
	}
	for _, s := range append(holds, lacks...) {
		if bytes.Contains(l.Tokens.Ciphertext, []byte(s.Reveal())) {
			tb.Errorf("ciphertext of %q holds %s in clear", l.UserID, s.Reveal())
		}
	}
}

// assertNoSecrets fails the test when the service's log output or any error it
// returned holds a code or token the fake LWA issued.
func (h *harness) assertNoSecrets(tb testing.TB) {
	tb.Helper()
	logs := h.logs.String()
	h.mu.Lock()
	errs := strings.Join(h.errs, "\n")
	h.mu.Unlock()
	for _, s := range h.lwa.secrets() {
		if strings.Contains(logs, s) {
			tb.Errorf("log output holds the secret %q:\n%s", s, logs)
		}
		if strings.Contains(errs, s) {
			tb.Errorf("an error holds the secret %q:\n%s", s, errs)
		}
	}
}

func assertCode(tb testing.TB, err error, want tokens.Code) {
	tb.Helper()
	if got := tokens.ErrorCode(err); got != want {
		tb.Fatalf("error = %v (code %q), want code %q", err, got, want)
	}
}

func assertCount(tb testing.TB, what string, got int64, want int64) {
	tb.Helper()
	if got != want {
		tb.Errorf("%s = %d, want %d", what, got, want)
	}
}

// waitFor polls cond until it holds, and fails the test after a deadline.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

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
			UserID: "alice", State: tokens.StateLinked, Region: "EU",
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

func TestService_Token(t *testing.T) {
	t.Run("NotFound", func(t *testing.T) {
		h := newHarness(t)
		_, err := h.token(t.Context(), "nobody")
		if !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("Token error = %v, want ErrLinkNotFound", err)
		}
		assertCode(t, err, tokens.ENOTFOUND)
	})

	t.Run("Fresh", func(t *testing.T) {
		h := newHarness(t)
		l, grant := h.mustLink(t, "alice")
		h.clock.Advance(30 * time.Minute)
		tok := h.mustToken(t, "alice")
		if got, want := tok.AccessToken, grant.AccessToken; got != want {
			t.Errorf("AccessToken = %s, want the exchanged one", got.Reveal())
		}
		if got, want := tok.ExpiresAt, l.AccessTokenExpiresAt; !got.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", got, want)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
	})

	t.Run("RefreshAhead", func(t *testing.T) {
		for _, tt := range []struct {
			name        string
			remaining   time.Duration // of the access token's life when asked
			wantRefresh bool
		}{
			{"JustFresh", ahead + time.Nanosecond, false},
			{"AtRefreshAhead", ahead, true},
			{"WithinRefreshAhead", ahead - time.Second, true},
			{"AtExpiry", 0, true},
			{"Expired", -24 * time.Hour, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := newHarness(t)
				linked, old := h.mustLink(t, "alice")
				now := h.clock.Advance(ttl - tt.remaining)
				tok := h.mustToken(t, "alice")
				l := h.stored(t, "alice")

				if !tt.wantRefresh {
					assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
					if got, want := tok.AccessToken, old.AccessToken; got != want {
						t.Errorf("AccessToken = %s, want the stored one", got.Reveal())
					}
					if diff := cmp.Diff(linked, l); diff != "" {
						t.Errorf("stored link changed (-before +after):\n%s", diff)
					}
					return
				}
				assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
				grant := h.lwa.lastGrant()
				if got, want := tok.AccessToken, grant.AccessToken; got != want {
					t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
				}
				if got, want := tok.ExpiresAt, now.Add(ttl); !got.Equal(want) {
					t.Errorf("ExpiresAt = %v, want %v", got, want)
				}
				if left := tok.ExpiresAt.Sub(now); left <= ahead {
					t.Errorf("token valid for %v more, want more than %v", left, ahead)
				}
				if got, want := l.AccessTokenExpiresAt, tok.ExpiresAt; !got.Equal(want) {
					t.Errorf("stored AccessTokenExpiresAt = %v, want %v", got, want)
				}
				if got, want := l.LastRefreshedAt, now; !got.Equal(want) {
					t.Errorf("stored LastRefreshedAt = %v, want %v", got, want)
				}
				if got, want := l.LinkedAt, linked.LinkedAt; !got.Equal(want) {
					t.Errorf("stored LinkedAt = %v, want unchanged %v", got, want)
				}
				if got, want := l.CodeHash, linked.CodeHash; got != want {
					t.Errorf("stored CodeHash = %q, want unchanged %q", got, want)
				}
				if l.Version <= linked.Version {
					t.Errorf("stored Version = %d, want > %d", l.Version, linked.Version)
				}
				h.assertSealed(t, l, []tokens.Secret{grant.AccessToken, grant.RefreshToken}, old.AccessToken, old.RefreshToken)

				// Asked again at once: the refreshed token is fresh.
				if got, want := h.mustToken(t, "alice").AccessToken, grant.AccessToken; got != want {
					t.Errorf("second AccessToken = %s, want %s", got.Reveal(), want.Reveal())
				}
				assertCount(t, "LWA refreshes after a second Token", h.lwa.refreshes.Load(), 1)
			})
		}
	})

	t.Run("Rotation", func(t *testing.T) {
		// The fake LWA refuses every refresh token but the newest, so five
		// successful refreshes prove that each rotated token was stored.
		h := newHarness(t)
		_, grant := h.mustLink(t, "alice")
		seen := map[tokens.Secret]bool{grant.AccessToken: true}
		for i := range 5 {
			h.clock.Advance(ttl + time.Minute)
			tok, err := h.token(t.Context(), "alice")
			if err != nil {
				t.Fatalf("expiry %d: Token error = %v", i+1, err)
			}
			assertCount(t, fmt.Sprintf("expiry %d: LWA refreshes", i+1), h.lwa.refreshes.Load(), int64(i+1))
			if seen[tok.AccessToken] {
				t.Errorf("expiry %d: access token handed out before", i+1)
			}
			seen[tok.AccessToken] = true
			next := h.lwa.lastGrant()
			h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{next.RefreshToken}, grant.RefreshToken)
			grant = next
		}
		if got, want := h.stored(t, "alice").State, tokens.StateLinked; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
	})

	t.Run("InvalidGrant", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			refuse func(h *harness)
		}{
			{"Refused", func(h *harness) { h.lwa.setRefreshErr(errRefused) }},
			{"Revoked", func(h *harness) { h.lwa.revoke("alice") }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				h := newHarness(t)
				linked, _ := h.mustLink(t, "alice")
				tt.refuse(h)
				h.clock.Advance(ttl)

				_, err := h.token(t.Context(), "alice")
				assertCode(t, err, tokens.ERELINK)
				assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
				l := h.stored(t, "alice")
				if got, want := l.State, tokens.StateRelinkRequired; got != want {
					t.Errorf("State = %v, want %v", got, want)
				}
				if l.Version <= linked.Version {
					t.Errorf("Version = %d, want > %d", l.Version, linked.Version)
				}

				// Nothing more is asked of LWA until the user links again.
				h.lwa.setRefreshErr(nil)
				for range 3 {
					_, err := h.token(t.Context(), "alice")
					assertCode(t, err, tokens.ERELINK)
				}
				_, err = h.refresh(t.Context(), "alice")
				assertCode(t, err, tokens.ERELINK)
				assertCount(t, "LWA refreshes after further calls", h.lwa.refreshes.Load(), 1)
			})
		}
	})

	t.Run("Transient", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		now := h.clock.Advance(ttl - time.Minute)
		linked := h.stored(t, "alice")
		h.lwa.setRefreshErr(errTransient)

		_, err := h.token(t.Context(), "alice")
		assertCode(t, err, tokens.EUNAVAILABLE)
		if diff := cmp.Diff(linked, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link changed by a failed refresh (-before +after):\n%s", diff)
		}

		h.lwa.setRefreshErr(nil)
		tok := h.mustToken(t, "alice")
		if got, want := tok.AccessToken, h.lwa.lastGrant().AccessToken; got != want {
			t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
		}
		if got, want := tok.ExpiresAt, now.Add(ttl); !got.Equal(want) {
			t.Errorf("ExpiresAt = %v, want %v", got, want)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 2)
	})

	t.Run("NoRotation", func(t *testing.T) {
		h := newHarness(t)
		_, grant := h.mustLink(t, "alice")
		h.lwa.setRotate(false)
		h.clock.Advance(ttl)
		tok := h.mustToken(t, "alice")
		next := h.lwa.lastGrant()
		if got, want := tok.AccessToken, next.AccessToken; got != want {
			t.Errorf("AccessToken = %s, want the refreshed one", got.Reveal())
		}
		h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{next.AccessToken, grant.RefreshToken}, grant.AccessToken)

		// The kept refresh token still works, with rotation back on too.
		h.clock.Advance(ttl)
		h.mustToken(t, "alice")
		h.lwa.setRotate(true)
		h.clock.Advance(ttl)
		h.mustToken(t, "alice")
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 3)
	})

	t.Run("DeletedDuringRefresh", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		h.clock.Advance(ttl)
		release := h.lwa.blockRefresh()
		defer release()
		errc := make(chan error, 1)
		go func() {
			_, err := h.token(t.Context(), "alice")
			errc <- err
		}()
		waitFor(t, "the refresh to reach LWA", func() bool { return h.lwa.blocked.Load() == 1 })
		if err := h.svc.Delete(t.Context(), "alice"); err != nil {
			t.Fatalf("Delete error = %v", err)
		}
		release()
		if err := <-errc; !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("Token error = %v, want ErrLinkNotFound", err)
		}
		if _, err := h.store.GetLink(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("link after delete: error = %v, want ErrLinkNotFound (the refresh must not bring it back)", err)
		}
	})

	// relinkDuringRefresh has alice's refresh wait at LWA while she links
	// again, lets refuse decide LWA's answer to the refresh, and returns the new
	// link and grant and what Token answered.
	relinkDuringRefresh := func(t *testing.T, h *harness, refuse bool) (*tokens.Link, tokens.Grant, tokens.Token, error) {
		t.Helper()
		h.mustLink(t, "alice")
		h.clock.Advance(ttl)
		release := h.lwa.blockRefresh()
		defer release()
		type result struct {
			tok tokens.Token
			err error
		}
		resc := make(chan result, 1)
		go func() {
			tok, err := h.token(t.Context(), "alice")
			resc <- result{tok, err}
		}()
		waitFor(t, "the refresh to reach LWA", func() bool { return h.lwa.blocked.Load() == 1 })
		relinked, grant := h.mustLink(t, "alice")
		if refuse {
			h.lwa.setRefreshErr(errRefused)
		}
		release()
		r := <-resc
		h.lwa.setRefreshErr(nil)
		return relinked, grant, r.tok, r.err
	}

	t.Run("RelinkedDuringRefresh", func(t *testing.T) {
		h := newHarness(t)
		relinked, grant, tok, err := relinkDuringRefresh(t, h, false)
		if err != nil {
			t.Fatalf("Token error = %v", err)
		}
		if got, want := tok.AccessToken, grant.AccessToken; got != want {
			t.Errorf("AccessToken = %s, want the new link's", got.Reveal())
		}
		if diff := cmp.Diff(relinked, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link (-relinked +stored): the refresh of the old link overwrote the new one:\n%s", diff)
		}
	})

	t.Run("RefusedWhileRelinked", func(t *testing.T) {
		h := newHarness(t)
		relinked, grant, tok, err := relinkDuringRefresh(t, h, true)
		if err != nil {
			t.Fatalf("Token error = %v, want the new link's token", err)
		}
		if got, want := tok.AccessToken, grant.AccessToken; got != want {
			t.Errorf("AccessToken = %s, want the new link's", got.Reveal())
		}
		if diff := cmp.Diff(relinked, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link (-relinked +stored):\n%s", diff)
		}
	})
}

func TestService_Token_Concurrent(t *testing.T) {
	const callers = 500
	h := newHarness(t)
	h.mustLink(t, "alice")
	h.clock.Advance(ttl + time.Minute)
	release := h.lwa.blockRefresh()
	defer release()

	gets := h.store.gets.Load()
	toks := make([]tokens.Token, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			tok, err := h.token(t.Context(), "alice")
			if err != nil {
				t.Errorf("caller %d: Token error = %v", i, err)
			}
			toks[i] = tok
		})
	}
	// Every caller has read the stale link, and one refresh waits at LWA. A
	// caller that comes to the refresh after it is done starts another, which
	// finds the token fresh: it makes no LWA call either.
	waitFor(t, "all callers to read the link", func() bool {
		return h.store.gets.Load()-gets >= callers+1 && h.lwa.blocked.Load() == 1
	})
	release()
	wg.Wait()

	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
	want := h.lwa.lastGrant().AccessToken
	for i, tok := range toks {
		if tok.AccessToken != want {
			t.Errorf("caller %d: AccessToken = %s, want %s", i, tok.AccessToken.Reveal(), want.Reveal())
			break
		}
	}
	h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{want, h.lwa.lastGrant().RefreshToken})
}

func TestService_Token_Deadline(t *testing.T) {
	h := newHarness(t)
	h.mustLink(t, "alice")
	h.clock.Advance(ttl)
	release := h.lwa.blockRefresh()
	defer release()

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := h.token(ctx, "alice")
	elapsed := time.Since(began)
	assertCode(t, err, tokens.EUNAVAILABLE)
	if elapsed > 2*time.Second {
		t.Errorf("Token returned after %v, want promptly after its 50ms deadline", elapsed)
	}
	if got, want := h.lwa.blocked.Load(), int64(1); got != want {
		t.Fatalf("refreshes waiting at LWA = %d, want %d: the impatient caller must not cut the refresh short", got, want)
	}
	if got, want := h.stored(t, "alice").State, tokens.StateLinked; got != want {
		t.Errorf("State = %v, want %v", got, want)
	}

	release()
	waitFor(t, "the refresh to be stored", func() bool {
		l := h.stored(t, "alice")
		return l.AccessTokenExpiresAt.Sub(h.clock.Now()) > ahead
	})
	tok := h.mustToken(t, "alice")
	if got, want := tok.AccessToken, h.lwa.lastGrant().AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the one the abandoned refresh got", got.Reveal())
	}
	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
}

func TestService_Refresh(t *testing.T) {
	t.Run("Fresh", func(t *testing.T) {
		h := newHarness(t)
		linked, old := h.mustLink(t, "alice")
		now := h.clock.Advance(10 * time.Minute)
		l, err := h.refresh(t.Context(), "alice")
		if err != nil {
			t.Fatalf("Refresh error = %v", err)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
		grant := h.lwa.lastGrant()
		if got, want := l.LastRefreshedAt, now; !got.Equal(want) {
			t.Errorf("LastRefreshedAt = %v, want %v", got, want)
		}
		if got, want := l.AccessTokenExpiresAt, now.Add(ttl); !got.Equal(want) {
			t.Errorf("AccessTokenExpiresAt = %v, want %v", got, want)
		}
		if l.Version <= linked.Version {
			t.Errorf("Version = %d, want > %d", l.Version, linked.Version)
		}
		if diff := cmp.Diff(l, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link (-returned +stored):\n%s", diff)
		}
		h.assertSealed(t, l, []tokens.Secret{grant.AccessToken, grant.RefreshToken}, old.AccessToken, old.RefreshToken)
		if got, want := h.mustToken(t, "alice").AccessToken, grant.AccessToken; got != want {
			t.Errorf("Token after Refresh = %s, want the refreshed one", got.Reveal())
		}
		assertCount(t, "LWA refreshes after Token", h.lwa.refreshes.Load(), 1)
	})

	t.Run("NotFound", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.refresh(t.Context(), "nobody"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("Refresh error = %v, want ErrLinkNotFound", err)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
	})

	t.Run("Transient", func(t *testing.T) {
		h := newHarness(t)
		linked, _ := h.mustLink(t, "alice")
		h.lwa.setRefreshErr(errTransient)
		_, err := h.refresh(t.Context(), "alice")
		assertCode(t, err, tokens.EUNAVAILABLE)
		if diff := cmp.Diff(linked, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link changed (-before +after):\n%s", diff)
		}
	})
}

func TestService_Delete(t *testing.T) {
	t.Run("Removes", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		h.mustLink(t, "bob")
		h.mustToken(t, "alice")
		if err := h.svc.Delete(t.Context(), "alice"); err != nil {
			t.Fatalf("Delete error = %v", err)
		}
		if _, err := h.svc.Link(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("Link after Delete: error = %v, want ErrLinkNotFound", err)
		}
		if _, err := h.token(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("Token after Delete: error = %v, want ErrLinkNotFound", err)
		}
		if _, err := h.svc.Link(t.Context(), "bob"); err != nil {
			t.Errorf("Link(bob) after deleting alice: error = %v", err)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
	})

	t.Run("NotFound", func(t *testing.T) {
		h := newHarness(t)
		if err := h.svc.Delete(t.Context(), "nobody"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("Delete error = %v, want ErrLinkNotFound", err)
		}
	})
}

func TestService_Links(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{"carol", "alice", "bob"} {
		h.mustLink(t, u)
	}
	var ids []string
	cursor := ""
	for range 5 {
		page, err := h.svc.Links(t.Context(), cursor, 2)
		if err != nil {
			t.Fatalf("Links(%q) error = %v", cursor, err)
		}
		for _, l := range page.Links {
			ids = append(ids, l.UserID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"alice", "bob", "carol"}, ids); diff != "" {
		t.Errorf("user ids (-want +got):\n%s", diff)
	}
}

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
			h := newHarness(t)
			h.useTime(time.Now)
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
			h := newHarness(t)
			h.useTime(time.Now)
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
			h := newHarness(t)
			h.useTime(time.Now)
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
			h := newHarness(t)
			h.useTime(time.Now)
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
					h := newHarness(t)
					h.useTime(time.Now)
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
				})
			})
		}
	})
}

func TestService_Secrets(t *testing.T) {
	// Every test's harness checks its errors and logs; this one drives every
	// path that logs or fails, and checks the printed forms of what the
	// service returns as well.
	h := newHarness(t)
	ctx := t.Context()
	_, grant := h.mustLink(t, "alice")
	code := h.lwa.newCode("bob")
	if _, err := h.exchange(ctx, "bob", code); err != nil {
		t.Fatal(err)
	}
	_, _ = h.exchange(ctx, "carol", code)                // the code of another user
	_, _ = h.exchange(ctx, "carol", "ANfakecodeunknown") // refused by LWA
	h.lwa.setExchangeErr(errTransient)
	_, _ = h.exchange(ctx, "carol", h.lwa.newCode("carol"))
	h.lwa.setExchangeErr(nil)

	h.clock.Advance(ttl)
	h.lwa.setRefreshErr(errTransient)
	_, _ = h.token(ctx, "alice")
	h.lwa.setRefreshErr(nil)
	tok := h.mustToken(t, "alice")
	h.lwa.revoke("bob")
	_, _ = h.token(ctx, "bob")
	_, _ = h.token(ctx, "bob")

	logs := h.logs.String()
	for _, want := range []string{"refreshed tokens", "refresh failed", "re-linking"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log output lacks %q; the secret check would prove little:\n%s", want, logs)
		}
	}

	link := h.stored(t, "alice")
	js, err := json.Marshal(struct {
		Token tokens.Token
		Link  *tokens.Link
		Grant tokens.Grant
	}{tok, link, grant})
	if err != nil {
		t.Fatal(err)
	}
	printed := strings.Join([]string{
		fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok),
		fmt.Sprintf("%+v", grant), fmt.Sprintf("%#v", grant),
		fmt.Sprintf("%+v", *link), string(js),
	}, "\n")
	for _, s := range h.lwa.secrets() {
		if strings.Contains(printed, s) {
			t.Errorf("printed forms hold the secret %q:\n%s", s, printed)
		}
	}
	if !strings.Contains(printed, "[REDACTED]") {
		t.Errorf("printed forms show no redacted placeholder:\n%s", printed)
	}
}
