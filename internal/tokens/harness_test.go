package tokens_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
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

// harness is a Service over the in-memory fakes and the real sealer, with a
// fake clock. It records every error the service returned, and at the end of
// the test fails it when any error or log line holds a code or token.
type harness struct {
	svc    *tokens.Service
	store  *memStore
	lwa    *fakeLWA
	clock  *sim.Clock
	sealer *seal.Sealer
	logs   *syncBuffer
	// now is the clock of every Service the harness makes: clock.Now, or the
	// bubble's time.Now after useTime.
	now func() time.Time

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
		clock:  sim.NewClock(epoch),
		sealer: sealer,
		logs:   &syncBuffer{},
	}
	h.now = h.clock.Now
	h.lwa = newFakeLWA(h.clock.Now, ttl)
	h.store.now = h.clock.Now
	h.svc = h.newService()
	tb.Cleanup(func() { h.assertNoSecrets(tb) })
	return h
}

// newBubbleHarness returns a harness on the clock of the synctest bubble it is
// called in, time.Now, rather than the fake clock.
func newBubbleHarness(tb testing.TB) *harness {
	tb.Helper()
	h := newHarness(tb)
	h.useTime(time.Now)
	return h
}

// newService returns another Service over the harness's store, sealer and LWA,
// logging to the same buffer: another broker instance.
func (h *harness) newService() *tokens.Service {
	return h.newServiceOf(h.store)
}

// newServiceOf returns a Service as newService does, over store instead of the
// harness's store.
func (h *harness) newServiceOf(store tokens.Store) *tokens.Service {
	svc := tokens.NewService(store, h.sealer, h.lwa)
	svc.Now = h.now
	svc.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return svc
}

// useTime puts now in place of the fake clock everywhere, for synctest
// bubbles; call it before anything runs.
func (h *harness) useTime(now func() time.Time) {
	h.now = now
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
	return h.tokenOf(ctx, h.svc, userID)
}

// tokenOf asks svc, one of the harness's Services, for userID's token.
func (h *harness) tokenOf(ctx context.Context, svc *tokens.Service, userID string) (tokens.Token, error) {
	tok, err := svc.Token(ctx, userID)
	return tok, h.saw(err)
}

// tokenResult is what a Token call answered.
type tokenResult struct {
	tok tokens.Token
	err error
}

// goToken asks svc for userID's token in a goroutine of its own, and returns
// the channel that receives the answer.
func (h *harness) goToken(ctx context.Context, svc *tokens.Service, userID string) <-chan tokenResult {
	c := make(chan tokenResult, 1)
	go func() {
		tok, err := h.tokenOf(ctx, svc, userID)
		c <- tokenResult{tok, err}
	}()
	return c
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

// mustTokenOf asks svc, one of the harness's Services, for userID's token,
// failing the test on error.
func (h *harness) mustTokenOf(tb testing.TB, svc *tokens.Service) tokens.Token {
	tb.Helper()
	tok, err := h.tokenOf(tb.Context(), svc, "alice")
	if err != nil {
		tb.Fatalf("Token(alice) error = %v", err)
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
