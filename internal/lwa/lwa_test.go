package lwa_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/amazontest"
	"github.com/reciprocal-broker/broker/internal/lwa"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// clientNow is the client's fixed clock, so grant expiries can be compared exactly.
var clientNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// startLWA starts an LWA simulator on a loopback port, closed when the test ends.
func startLWA(tb testing.TB, opts sim.LWAOptions) *sim.LWA {
	tb.Helper()
	l := sim.NewLWA(opts)
	if err := l.Start(context.Background()); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return l
}

// newClient returns a client of l with short backoffs and the fixed clock;
// mods adjust its options.
func newClient(tb testing.TB, l *sim.LWA, mods ...func(*lwa.Options)) *lwa.Client {
	tb.Helper()
	opts := lwa.Options{
		TokenURL:       l.TokenURL(),
		ClientID:       l.ClientID(),
		ClientSecret:   tokens.Secret(l.ClientSecret()),
		Now:            func() time.Time { return clientNow },
		InitialBackoff: 10 * time.Millisecond,
		MaxBackoff:     40 * time.Millisecond,
	}
	for _, mod := range mods {
		mod(&opts)
	}
	c, err := lwa.New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// contextWithTimeout returns a context that ends after d or with the test.
func contextWithTimeout(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), d)
	tb.Cleanup(cancel)
	return ctx
}

// assertNoSecret fails when text contains one of secrets.
func assertNoSecret(tb testing.TB, what, text string, secrets ...string) {
	tb.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			tb.Errorf("%s contains a secret %q: %s", what, s, text)
		}
	}
}

// assertErrorCode fails unless err has the domain code want, or is nil when want is "".
func assertErrorCode(tb testing.TB, err error, want tokens.Code) {
	tb.Helper()
	if got := tokens.ErrorCode(err); got != want {
		tb.Fatalf("error code = %q, want %q (err: %v)", got, want, err)
	}
}

func TestClient_Exchange(t *testing.T) {
	type env struct {
		lwa   *sim.LWA
		clock *sim.Clock
	}
	tests := []struct {
		name    string
		sim     sim.LWAOptions
		client  func(*lwa.Options)
		setup   func(t *testing.T, e env) (code string)
		timeout time.Duration
		// wantCode is the domain error code, "" for success.
		wantCode         tokens.Code
		wantInvalidGrant bool
		wantRequests     int
		wantDeadline     bool // the error wraps context.DeadlineExceeded
		wantLifetime     time.Duration
		// maxElapsed bounds how long the call may take; minElapsed is the least.
		minElapsed, maxElapsed time.Duration
	}{
		{
			name:         "Success",
			wantRequests: 1,
			wantLifetime: time.Hour,
		},
		{
			name:         "FormClientAuth",
			client:       func(o *lwa.Options) { o.ClientAuth = lwa.ClientAuthForm },
			wantRequests: 1,
			wantLifetime: time.Hour,
		},
		{
			name:         "StringExpiresIn",
			sim:          sim.LWAOptions{ExpiresInAsString: true, AccessTokenLifetime: 30 * time.Minute},
			wantRequests: 1,
			wantLifetime: 30 * time.Minute,
		},
		{
			name: "UsedCode",
			setup: func(t *testing.T, e env) string {
				code := e.lwa.IssueCode()
				if _, err := newClient(t, e.lwa).Exchange(t.Context(), tokens.Secret(code)); err != nil {
					t.Fatalf("first Exchange: %v", err)
				}
				return code
			},
			wantCode:         tokens.EINVALID,
			wantInvalidGrant: true,
			wantRequests:     2,
		},
		{
			name:             "UnknownCode",
			setup:            func(*testing.T, env) string { return "ANsimNOSUCHCODE" },
			wantCode:         tokens.EINVALID,
			wantInvalidGrant: true,
			wantRequests:     1,
		},
		{
			name: "ExpiredCode",
			setup: func(_ *testing.T, e env) string {
				code := e.lwa.IssueCode()
				e.clock.Advance(sim.DefaultLWACodeLifetime + time.Second)
				return code
			},
			wantCode:         tokens.EINVALID,
			wantInvalidGrant: true,
			wantRequests:     1,
		},
		{
			name:         "WrongClientSecretNotRetried",
			client:       func(o *lwa.Options) { o.ClientSecret = "not-the-secret" },
			wantCode:     tokens.EINTERNAL,
			wantRequests: 1,
		},
		{
			name:         "WrongClientSecretInFormNotRetried",
			client:       func(o *lwa.Options) { o.ClientSecret = "not-the-secret"; o.ClientAuth = lwa.ClientAuthForm },
			wantCode:     tokens.EINTERNAL,
			wantRequests: 1,
		},
		{
			name: "ServerErrorTwiceThenSuccess",
			setup: func(_ *testing.T, e env) string {
				e.lwa.FailNext(2, http.StatusInternalServerError, 0)
				return e.lwa.IssueCode()
			},
			wantRequests: 3,
			wantLifetime: time.Hour,
		},
		{
			name: "ThrottledWithRetryAfterThenSuccess",
			setup: func(_ *testing.T, e env) string {
				e.lwa.ThrottleNext(1, time.Second)
				return e.lwa.IssueCode()
			},
			wantRequests: 2,
			wantLifetime: time.Hour,
			minElapsed:   time.Second,
			maxElapsed:   3 * time.Second,
		},
		{
			name:   "UnavailableThroughout",
			client: func(o *lwa.Options) { o.MaxAttempts = 3 },
			setup: func(_ *testing.T, e env) string {
				e.lwa.FailNext(10, http.StatusServiceUnavailable, 0)
				return e.lwa.IssueCode()
			},
			wantCode:     tokens.EUNAVAILABLE,
			wantRequests: 3,
		},
		{
			name: "SlowAnswerBeyondDeadline",
			setup: func(_ *testing.T, e env) string {
				e.lwa.SetDelay(10 * time.Second)
				return e.lwa.IssueCode()
			},
			timeout:      300 * time.Millisecond,
			wantCode:     tokens.EUNAVAILABLE,
			wantRequests: 1,
			wantDeadline: true,
			maxElapsed:   time.Second,
		},
		{
			name: "RetryAfterBeyondDeadline",
			setup: func(_ *testing.T, e env) string {
				e.lwa.ThrottleNext(1, 5*time.Second)
				return e.lwa.IssueCode()
			},
			timeout:      time.Second,
			wantCode:     tokens.EUNAVAILABLE,
			wantRequests: 1,
			maxElapsed:   500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clk := sim.NewClock(time.Now())
			opts := tt.sim
			opts.Now = clk.Now
			e := env{lwa: startLWA(t, opts), clock: clk}
			var code string
			if tt.setup != nil {
				code = tt.setup(t, e)
			} else {
				code = e.lwa.IssueCode()
			}
			var mods []func(*lwa.Options)
			if tt.client != nil {
				mods = append(mods, tt.client)
			}
			c := newClient(t, e.lwa, mods...)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 4 * time.Second // what Alexa's hand-over leaves the broker
			}
			ctx := contextWithTimeout(t, timeout)

			start := time.Now()
			g, err := c.Exchange(ctx, tokens.Secret(code))
			elapsed := time.Since(start)

			assertErrorCode(t, err, tt.wantCode)
			if got, want := errors.Is(err, tokens.ErrInvalidGrant), tt.wantInvalidGrant; got != want {
				t.Errorf("errors.Is(err, ErrInvalidGrant) = %v, want %v (err: %v)", got, want, err)
			}
			if got, want := e.lwa.Stats().Requests, tt.wantRequests; got != want {
				t.Errorf("requests served = %d, want %d", got, want)
			}
			if tt.minElapsed > 0 && elapsed < tt.minElapsed {
				t.Errorf("call took %v, want at least %v", elapsed, tt.minElapsed)
			}
			if tt.maxElapsed > 0 && elapsed > tt.maxElapsed {
				t.Errorf("call took %v, want at most %v", elapsed, tt.maxElapsed)
			}
			if err != nil {
				t.Logf("error after %v: %v", elapsed.Round(time.Millisecond), err)
				assertNoSecret(t, "error", fmt.Sprintf("%v %+v", err, err), code, e.lwa.ClientSecret())
				var le *lwa.Error
				if !errors.As(err, &le) {
					t.Errorf("error %T is not an *lwa.Error", err)
				}
				if got, want := lwa.IsTransient(err), tt.wantCode == tokens.EUNAVAILABLE; got != want {
					t.Errorf("IsTransient = %v, want %v", got, want)
				}
				if got, want := errors.Is(err, context.DeadlineExceeded), tt.wantDeadline; got != want {
					t.Errorf("errors.Is(err, context.DeadlineExceeded) = %v, want %v (err: %v)", got, want, err)
				}
				return
			}
			if !strings.HasPrefix(g.AccessToken.Reveal(), "Atza|") || !strings.HasPrefix(g.RefreshToken.Reveal(), "Atzr|") {
				t.Errorf("grant tokens have unexpected shapes")
			}
			if !e.lwa.ValidAccessToken(g.AccessToken.Reveal()) {
				t.Errorf("the simulator does not accept the access token")
			}
			if got, want := g.Expiry, clientNow.Add(tt.wantLifetime); !got.Equal(want) {
				t.Errorf("Expiry = %v, want %v", got, want)
			}
			if got, want := e.lwa.Stats().ExchangesOK, 1; got != want {
				t.Errorf("successful exchanges = %d, want %d", got, want)
			}
		})
	}
}

func TestClient_Refresh(t *testing.T) {
	tests := []struct {
		name string
		sim  sim.LWAOptions
		run  func(t *testing.T, l *sim.LWA, c *lwa.Client, first tokens.Grant)
	}{
		{
			name: "RotatesOnEveryRefresh",
			run: func(t *testing.T, l *sim.LWA, c *lwa.Client, first tokens.Grant) {
				seen := map[string]bool{first.RefreshToken.Reveal(): true}
				rt := first.RefreshToken
				for i := range 4 {
					g, err := c.Refresh(t.Context(), rt)
					if err != nil {
						t.Fatalf("refresh %d: %v", i, err)
					}
					if g.RefreshToken == "" || seen[g.RefreshToken.Reveal()] {
						t.Fatalf("refresh %d: refresh token was not rotated", i)
					}
					seen[g.RefreshToken.Reveal()] = true
					if !l.ValidAccessToken(g.AccessToken.Reveal()) {
						t.Errorf("refresh %d: the simulator does not accept the new access token", i)
					}
					if got, want := g.Expiry, clientNow.Add(time.Hour); !got.Equal(want) {
						t.Errorf("refresh %d: Expiry = %v, want %v", i, got, want)
					}
					rt = g.RefreshToken
				}
				if got, want := l.Stats().RefreshesOK, 4; got != want {
					t.Errorf("successful refreshes = %d, want %d", got, want)
				}
			},
		},
		{
			name: "ReusedOldToken",
			run: func(t *testing.T, _ *sim.LWA, c *lwa.Client, first tokens.Grant) {
				if _, err := c.Refresh(t.Context(), first.RefreshToken); err != nil {
					t.Fatalf("first refresh: %v", err)
				}
				_, err := c.Refresh(t.Context(), first.RefreshToken)
				if !errors.Is(err, tokens.ErrInvalidGrant) {
					t.Fatalf("reuse: err = %v, want ErrInvalidGrant", err)
				}
				if lwa.IsTransient(err) {
					t.Errorf("reuse: error is transient, want final")
				}
				assertNoSecret(t, "error", err.Error(), first.RefreshToken.Reveal(), first.AccessToken.Reveal())
			},
		},
		{
			name: "NoRotation",
			sim:  sim.LWAOptions{NoRotation: true},
			run: func(t *testing.T, _ *sim.LWA, c *lwa.Client, first tokens.Grant) {
				for i := range 2 {
					g, err := c.Refresh(t.Context(), first.RefreshToken)
					if err != nil {
						t.Fatalf("refresh %d: %v", i, err)
					}
					if g.RefreshToken != "" {
						t.Errorf("refresh %d: RefreshToken set, want empty when LWA does not rotate", i)
					}
				}
			},
		},
		{
			name: "StringExpiresIn",
			sim:  sim.LWAOptions{ExpiresInAsString: true},
			run: func(t *testing.T, _ *sim.LWA, c *lwa.Client, first tokens.Grant) {
				g, err := c.Refresh(t.Context(), first.RefreshToken)
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if got, want := g.Expiry, clientNow.Add(time.Hour); !got.Equal(want) {
					t.Errorf("Expiry = %v, want %v", got, want)
				}
			},
		},
		{
			name: "RevokedGrant",
			run: func(t *testing.T, l *sim.LWA, c *lwa.Client, first tokens.Grant) {
				if !l.RevokeRefreshToken(first.RefreshToken.Reveal()) {
					t.Fatal("RevokeRefreshToken = false")
				}
				if _, err := c.Refresh(t.Context(), first.RefreshToken); !errors.Is(err, tokens.ErrInvalidGrant) {
					t.Fatalf("err = %v, want ErrInvalidGrant", err)
				}
			},
		},
		{
			name: "ServiceUnavailableThenSuccess",
			run: func(t *testing.T, l *sim.LWA, c *lwa.Client, first tokens.Grant) {
				l.FailNext(2, http.StatusServiceUnavailable, 0)
				g, err := c.Refresh(contextWithTimeout(t, 4*time.Second), first.RefreshToken)
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if g.RefreshToken == "" {
					t.Error("refresh token was not rotated")
				}
				if got, want := l.Stats().Refreshes, 3; got != want {
					t.Errorf("refresh requests = %d, want %d", got, want)
				}
			},
		},
		{
			name: "EmptyToken",
			run: func(t *testing.T, l *sim.LWA, c *lwa.Client, _ tokens.Grant) {
				if _, err := c.Refresh(t.Context(), ""); !errors.Is(err, tokens.ErrInvalidGrant) {
					t.Fatalf("err = %v, want ErrInvalidGrant", err)
				}
				if got := l.Stats().Refreshes; got != 0 {
					t.Errorf("refresh requests = %d, want 0", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := startLWA(t, tt.sim)
			c := newClient(t, l)
			first, err := c.Exchange(t.Context(), tokens.Secret(l.IssueCode()))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			tt.run(t, l, c, first)
		})
	}
}

func TestClient_Unreachable(t *testing.T) {
	c, err := lwa.New(lwa.Options{
		TokenURL:       amazontest.ClosedURL(t) + "/auth/o2/token",
		ClientID:       "id",
		ClientSecret:   "secret",
		MaxAttempts:    2,
		InitialBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Exchange(contextWithTimeout(t, 2*time.Second), "code")
	assertErrorCode(t, err, tokens.EUNAVAILABLE)
	var le *lwa.Error
	if !errors.As(err, &le) || le.Attempts != 2 {
		t.Errorf("err = %#v, want an *lwa.Error after 2 attempts", err)
	}
}

// TestClient_ErrorsHideSecrets runs failures against a hostile token endpoint that
// quotes the request (code, refresh token, client secret) back in its answers,
// and checks that neither errors nor logs repeat any of it.
func TestClient_ErrorsHideSecrets(t *testing.T) {
	const (
		secret       = "client-secret-SHOULD-NOT-LEAK"
		code         = "ANcode-SHOULD-NOT-LEAK"
		refreshToken = "Atzr|refresh-SHOULD-NOT-LEAK"
	)
	tests := []struct {
		name     string
		status   int
		auth     lwa.ClientAuth
		wantCode tokens.Code
	}{
		{name: "InvalidGrant", status: http.StatusBadRequest, wantCode: tokens.EINVALID},
		{name: "InvalidClient", status: http.StatusUnauthorized, wantCode: tokens.EINTERNAL},
		{name: "InvalidClientForm", status: http.StatusUnauthorized, auth: lwa.ClientAuthForm, wantCode: tokens.EINTERNAL},
		{name: "ServerError", status: http.StatusInternalServerError, wantCode: tokens.EUNAVAILABLE},
		{name: "MalformedSuccess", status: http.StatusOK, wantCode: tokens.EUNAVAILABLE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startEcho(t, tt.status)
			var logs bytes.Buffer
			c, err := lwa.New(lwa.Options{
				TokenURL:       srv,
				ClientID:       "amzn1.application-oa2-client.test",
				ClientSecret:   secret,
				ClientAuth:     tt.auth,
				MaxAttempts:    2,
				InitialBackoff: time.Millisecond,
				Logger:         slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			_, errExchange := c.Exchange(t.Context(), code)
			_, errRefresh := c.Refresh(t.Context(), refreshToken)
			for _, err := range []error{errExchange, errRefresh} {
				assertErrorCode(t, err, tt.wantCode)
				text := fmt.Sprintf("%v|%+v|%s|%s", err, err, tokens.ErrorMessage(err), errors.Unwrap(err))
				assertNoSecret(t, "error", text, secret, code, refreshToken, "SHOULD-NOT-LEAK")
			}
			assertNoSecret(t, "log", logs.String(), secret, code, refreshToken, "SHOULD-NOT-LEAK")
		})
	}
}

// startEcho starts a token endpoint that answers every request with status and
// a body quoting the request, credentials included. It returns its URL.
func startEcho(tb testing.TB, status int) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			echo := strings.NewReplacer(`"`, `'`, `\`, `/`).Replace(r.Header.Get("Authorization") + " " + string(body))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			switch status {
			case http.StatusOK:
				fmt.Fprintf(w, `{"access_token": %s`, echo) // not JSON
			case http.StatusBadRequest:
				fmt.Fprintf(w, `{"error":"invalid_grant","error_description":"%s","error_uri":"%s"}`, echo, echo)
			case http.StatusUnauthorized:
				fmt.Fprintf(w, `{"error":"invalid_client %s","error_description":"%s"}`, echo, echo)
			default:
				fmt.Fprintf(w, `<html>%s</html>`, echo)
			}
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String() + "/auth/o2/token"
}

func TestClient_Concurrent(t *testing.T) {
	l := startLWA(t, sim.LWAOptions{})
	// Five faults in all: six attempts make every call succeed, however the
	// faults fall.
	c := newClient(t, l, func(o *lwa.Options) { o.MaxAttempts = 6 })
	l.FailNext(5, http.StatusInternalServerError, 0)
	const users = 16
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for range users {
		wg.Go(func() {
			ctx := contextWithTimeout(t, 4*time.Second)
			g, err := c.Exchange(ctx, tokens.Secret(l.IssueCode()))
			if err != nil {
				errs <- fmt.Errorf("exchange: %w", err)
				return
			}
			for range 3 {
				if g, err = c.Refresh(ctx, g.RefreshToken); err != nil {
					errs <- fmt.Errorf("refresh: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := l.Stats().RefreshesOK, users*3; got != want {
		t.Errorf("successful refreshes = %d, want %d", got, want)
	}
}

func TestNew(t *testing.T) {
	const secret = "s3cr3t-value"
	valid := lwa.Options{ClientID: "id", ClientSecret: secret}
	tests := []struct {
		name   string
		modify func(*lwa.Options)
		want   tokens.Code
	}{
		{name: "Valid", modify: func(*lwa.Options) {}},
		{name: "MissingClientID", modify: func(o *lwa.Options) { o.ClientID = "" }, want: tokens.EINVALID},
		{name: "MissingClientSecret", modify: func(o *lwa.Options) { o.ClientSecret = "" }, want: tokens.EINVALID},
		{name: "RelativeTokenURL", modify: func(o *lwa.Options) { o.TokenURL = "/auth/o2/token" }, want: tokens.EINVALID},
		{name: "TokenURLWithCredentials", modify: func(o *lwa.Options) { o.TokenURL = "https://u:p@example.com/t" }, want: tokens.EINVALID},
		{name: "UnknownClientAuth", modify: func(o *lwa.Options) { o.ClientAuth = 7 }, want: tokens.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.modify(&opts)
			_, err := lwa.New(opts)
			assertErrorCode(t, err, tt.want)
			if err != nil {
				assertNoSecret(t, "error", err.Error(), secret)
			}
		})
	}
}
