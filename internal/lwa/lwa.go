// Package lwa is the broker's client of Login with Amazon's token endpoint. It
// trades authorization codes and refresh tokens for grants, retries what is
// transient (network errors, time-outs, 429 and 5xx, honouring Retry-After)
// within the caller's deadline, and turns every failure into one of the domain's
// error kinds: tokens.ErrInvalidGrant when LWA refused the grant, EUNAVAILABLE
// when LWA could not be reached, EINTERNAL when LWA rejected the broker itself.
// It believes LWA's expires_in only within [MinExpiresIn, MaxExpiresIn] and
// logs what LWA sent otherwise.
//
// It is the one place that opens the client secret, codes and tokens to send
// them; no error it returns and no line it logs contains any of them.
package lwa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"golang.org/x/oauth2"

	"github.com/reciprocal-broker/broker/internal/retryafter"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// DefaultTokenURL is Login with Amazon's token endpoint.
const DefaultTokenURL = "https://api.amazon.com/auth/o2/token"

// Defaults of Options.
const (
	// DefaultHTTPTimeout bounds one attempt of the default HTTP client.
	DefaultHTTPTimeout = 10 * time.Second
	// DefaultMaxAttempts is how many times a call is tried, first attempt included.
	DefaultMaxAttempts = 4
	// DefaultInitialBackoff is the wait before the first retry, before jitter.
	DefaultInitialBackoff = 200 * time.Millisecond
	// DefaultMaxBackoff caps the wait between two attempts, before jitter.
	DefaultMaxBackoff = 2 * time.Second
	// DefaultRetryBudget bounds the time spent retrying when the caller's
	// context has no deadline.
	DefaultRetryBudget = 10 * time.Second
	// DefaultExpiresIn is the access token lifetime assumed when LWA's answer
	// carries no expires_in (LWA's tokens live an hour).
	DefaultExpiresIn = time.Hour
)

// The bounds of the access token lifetime the client believes. LWA's tokens
// live an hour; an expires_in outside these bounds is a fault of the answer,
// not a lifetime. The answer is kept, since a refresh's answer holds the only
// valid refresh token, with its lifetime clamped into the bounds, and the
// client logs what LWA sent.
const (
	// MinExpiresIn is the shortest lifetime believed: a smaller expires_in,
	// zero and negative ones included, counts as this.
	MinExpiresIn = time.Minute
	// MaxExpiresIn is the longest lifetime believed: a larger expires_in counts
	// as this, so that the token is refreshed no later than a day on.
	MaxExpiresIn = 24 * time.Hour
)

// minAttemptTime is the least time left before the caller's deadline for which
// another attempt is worth starting.
const minAttemptTime = 50 * time.Millisecond

// ClientAuth is how the client presents its credentials to LWA.
type ClientAuth int

// The ways of client authentication LWA accepts.
const (
	// ClientAuthBasic sends the client id and secret as HTTP Basic
	// authentication (RFC 6749 §2.3.1). It is the default.
	ClientAuthBasic ClientAuth = iota
	// ClientAuthForm sends them as the client_id and client_secret form fields.
	ClientAuthForm
)

// Options configures a Client.
type Options struct {
	// TokenURL is the token endpoint; empty means DefaultTokenURL.
	TokenURL string
	// ClientID and ClientSecret are the skill's Alexa Client Id and Secret.
	// Both are required.
	ClientID     string
	ClientSecret tokens.Secret
	// ClientAuth chooses how the credentials are sent; the zero value is
	// ClientAuthBasic.
	ClientAuth ClientAuth
	// HTTPClient makes the requests; its Timeout bounds each attempt. Nil means a
	// client with DefaultHTTPTimeout that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock from which grant expiries are computed; nil means time.Now.
	Now func() time.Time
	// MaxAttempts is how many times a transient failure is tried in all; zero
	// means DefaultMaxAttempts, one turns retries off.
	MaxAttempts int
	// InitialBackoff and MaxBackoff shape the exponential backoff between
	// attempts (doubling, with ±50% jitter); zero means the defaults. A
	// Retry-After from LWA replaces the computed wait.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// RetryBudget bounds the time spent on one call when ctx has no deadline;
	// zero means DefaultRetryBudget. With a deadline, the deadline bounds it too.
	RetryBudget time.Duration
	// Logger receives a warning for each retry; nil logs nothing.
	Logger *slog.Logger
	// Observer is told of every request to LWA, each attempt of a call once;
	// nil tells no one.
	Observer Observer
}

// The calls an Observer is told of.
const (
	// CallExchange is a request of Exchange (authorization code grant).
	CallExchange = "lwa_exchange"
	// CallRefresh is a request of Refresh (refresh token grant).
	CallRefresh = "lwa_refresh"
)

// The outcomes of a request to LWA.
const (
	// OutcomeOK: LWA answered with a grant.
	OutcomeOK = "ok"
	// OutcomeRejected: LWA refused the request (invalid_grant, refused client
	// credentials, any other 4xx but 429).
	OutcomeRejected = "rejected"
	// OutcomeThrottled: LWA answered 429 Too Many Requests.
	OutcomeThrottled = "throttled"
	// OutcomeError: LWA failed (5xx, 408, or an answer of any status whose
	// error code is server_error or temporarily_unavailable) or sent an
	// answer that could not be read.
	OutcomeError = "error"
	// OutcomeUnreachable: no answer came (network failure, time-out, the
	// caller's deadline).
	OutcomeUnreachable = "unreachable"
)

// Observer is told of every request to LWA, so that the broker can count them
// without this package knowing how. Implementations must be safe for
// concurrent use and must not block.
type Observer interface {
	// ObserveAmazonCall is told that a request of call (CallExchange,
	// CallRefresh) ended with outcome (OutcomeOK, ...) after d.
	ObserveAmazonCall(call, outcome string, d time.Duration)
}

// Client is the broker's LWA client. It is safe for concurrent use.
type Client struct {
	cfg         oauth2.Config
	http        *http.Client
	now         func() time.Time
	maxAttempts int
	initial     time.Duration
	maxBackoff  time.Duration
	budget      time.Duration
	log         *slog.Logger
	observer    Observer
}

var _ tokens.Exchanger = (*Client)(nil)

// New returns a Client configured by opts. It returns an EINVALID error when the
// client id or secret is missing or the token URL is not an absolute http(s) URL.
func New(opts Options) (*Client, error) {
	if opts.TokenURL == "" {
		opts.TokenURL = DefaultTokenURL
	}
	u, err := url.Parse(opts.TokenURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return nil, tokens.Errorf(tokens.EINVALID, "lwa: token URL must be an absolute http(s) URL")
	case u.User != nil:
		return nil, tokens.Errorf(tokens.EINVALID, "lwa: token URL must not carry credentials")
	case opts.ClientID == "":
		return nil, tokens.Errorf(tokens.EINVALID, "lwa: client id is required")
	case opts.ClientSecret == "":
		return nil, tokens.Errorf(tokens.EINVALID, "lwa: client secret is required")
	case opts.ClientAuth != ClientAuthBasic && opts.ClientAuth != ClientAuthForm:
		return nil, tokens.Errorf(tokens.EINVALID, "lwa: unknown client authentication %d", opts.ClientAuth)
	}
	style := oauth2.AuthStyleInHeader
	if opts.ClientAuth == ClientAuthForm {
		style = oauth2.AuthStyleInParams
	}
	c := &Client{
		cfg: oauth2.Config{
			ClientID:     opts.ClientID,
			ClientSecret: opts.ClientSecret.Reveal(),
			// Never AuthStyleAutoDetect: its probing sends a failed code twice.
			Endpoint: oauth2.Endpoint{TokenURL: opts.TokenURL, AuthStyle: style},
		},
		http:        opts.HTTPClient,
		now:         opts.Now,
		maxAttempts: opts.MaxAttempts,
		initial:     opts.InitialBackoff,
		maxBackoff:  opts.MaxBackoff,
		budget:      opts.RetryBudget,
		log:         opts.Logger,
		observer:    opts.Observer,
	}
	if c.http == nil {
		c.http = &http.Client{
			Timeout: DefaultHTTPTimeout,
			// A redirected POST would lose its body; answer the 3xx as an error.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.initial <= 0 {
		c.initial = DefaultInitialBackoff
	}
	if c.maxBackoff <= 0 {
		c.maxBackoff = DefaultMaxBackoff
	}
	if c.budget <= 0 {
		c.budget = DefaultRetryBudget
	}
	return c, nil
}

// Exchange trades an authorization code for a grant. It returns
// tokens.ErrInvalidGrant (wrapped) when LWA refused the code, an EUNAVAILABLE
// error when LWA could not be reached or kept failing until the retries or ctx's
// deadline ran out, and an EINTERNAL error when LWA rejected the client
// credentials or the request. Every error is an *Error.
func (c *Client) Exchange(ctx context.Context, code tokens.Secret) (tokens.Grant, error) {
	const op = "exchange"
	if code == "" {
		return tokens.Grant{}, &Error{Op: op, Err: tokens.ErrInvalidGrant, reason: "empty authorization code"}
	}
	return c.do(ctx, op, func(ctx context.Context) (*oauth2.Token, error) {
		return c.cfg.Exchange(ctx, code.Reveal())
	})
}

// Refresh trades a refresh token for a new grant. The grant's RefreshToken is
// the rotated token that replaces refreshToken, or empty when LWA did not send
// one and refreshToken stays valid. Errors are as for Exchange;
// tokens.ErrInvalidGrant means the user must link again.
func (c *Client) Refresh(ctx context.Context, refreshToken tokens.Secret) (tokens.Grant, error) {
	const op = "refresh"
	if refreshToken == "" {
		return tokens.Grant{}, &Error{Op: op, Err: tokens.ErrInvalidGrant, reason: "empty refresh token"}
	}
	return c.do(ctx, op, func(ctx context.Context) (*oauth2.Token, error) {
		// A token without an access token is invalid, so the source refreshes.
		return c.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken.Reveal()}).Token()
	})
}

// do runs call, retrying transient failures with jittered exponential backoff
// (or LWA's Retry-After) while both the retry budget and ctx's deadline allow.
func (c *Client) do(ctx context.Context, op string, call func(context.Context) (*oauth2.Token, error)) (tokens.Grant, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.http)

	budget := c.budget
	if deadline, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(deadline)-minAttemptTime)
	}
	tries := uint(c.maxAttempts)
	if budget <= 0 {
		tries, budget = 1, time.Nanosecond // one attempt, no waiting
	}

	var (
		last     *Error
		attempts int
	)
	grant, err := backoff.Retry(ctx, func() (tokens.Grant, error) {
		attempts++
		start := c.now()
		began := time.Now()
		tok, err := call(ctx)
		if err == nil {
			g, gerr := c.grant(ctx, op, tok, start)
			if gerr != nil {
				c.observe(op, OutcomeError, began)
				last = gerr
				last.Attempts = attempts
				return tokens.Grant{}, backoff.Permanent(last)
			}
			c.observe(op, OutcomeOK, began)
			return g, nil
		}
		last = classify(ctx, op, err)
		c.observe(op, last.outcome(), began)
		last.Attempts = attempts
		switch {
		case !last.retry:
			return tokens.Grant{}, backoff.Permanent(last)
		case last.RetryAfter > 0:
			return tokens.Grant{}, &backoff.RetryAfterError{Duration: last.RetryAfter}
		}
		return tokens.Grant{}, last
	},
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval:     c.initial,
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         c.maxBackoff,
		}),
		backoff.WithMaxTries(tries),
		backoff.WithMaxElapsedTime(budget),
		backoff.WithNotify(func(_ error, wait time.Duration) {
			if c.log != nil && last != nil {
				c.log.LogAttrs(ctx, slog.LevelWarn, "lwa: retrying",
					slog.String("op", op),
					slog.Int("attempt", last.Attempts),
					slog.Int("status", last.StatusCode),
					slog.String("error_code", last.ErrorCode),
					slog.Duration("wait", wait))
			}
		}),
	)
	if err == nil {
		return grant, nil
	}
	if last == nil { // cannot happen: every failed attempt sets last
		return tokens.Grant{}, &Error{Op: op, Err: tokens.Errorf(tokens.EINTERNAL, "Login with Amazon call failed")}
	}
	if last.retry && attempts < int(tries) && last.reason == "" {
		// Stopped early: the next wait would have passed the deadline or budget.
		last.reason = "no time left to retry"
	}
	return tokens.Grant{}, last
}

// observe tells the observer of a request of op that began at began.
func (c *Client) observe(op, outcome string, began time.Time) {
	if c.observer == nil {
		return
	}
	call := CallRefresh
	if op == "exchange" {
		call = CallExchange
	}
	c.observer.ObserveAmazonCall(call, outcome, time.Since(began))
}

// outcome is the Observer's outcome of the request that failed with e.
func (e *Error) outcome() string {
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		return OutcomeThrottled
	case e.StatusCode == 0 && e.cause != nil: // transport failure or deadline
		return OutcomeUnreachable
	case e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout || e.StatusCode == 0 || e.retry:
		// An answer that says LWA failed (server_error, temporarily_unavailable),
		// whatever its status, is retried: it is a failure, not a refusal.
		return OutcomeError
	}
	return OutcomeRejected
}

// grant turns LWA's answer into a domain grant; start is when the request began,
// so the expiry errs on the early side. The lifetime is LWA's expires_in within
// [MinExpiresIn, MaxExpiresIn], or DefaultExpiresIn when LWA sent none; an
// expires_in out of bounds or missing is logged. It returns an EUNAVAILABLE
// *Error when expires_in is not a whole number (a form-encoded answer; x/oauth2
// refuses such a JSON answer itself).
func (c *Client) grant(ctx context.Context, op string, tok *oauth2.Token, start time.Time) (tokens.Grant, *Error) {
	g := tokens.Grant{AccessToken: tokens.Secret(tok.AccessToken)}
	// x/oauth2 copies the presented refresh token into the answer when LWA sent
	// none; the raw answer tells whether LWA rotated it.
	if rt, _ := tok.Extra("refresh_token").(string); rt != "" {
		g.RefreshToken = tokens.Secret(rt)
	}
	life, sent, exact, ok := expiresIn(tok.Extra("expires_in"))
	if !ok {
		return tokens.Grant{}, &Error{
			Op:     op,
			Err:    tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon sent a malformed answer"),
			reason: "expires_in is not a whole number",
		}
	}
	if !exact {
		if sent == "" {
			sent = "(none)"
		}
		if c.log != nil {
			// expires_in is a number of seconds, never a secret.
			c.log.LogAttrs(ctx, slog.LevelWarn, "lwa: expires_in out of bounds; using a bounded lifetime",
				slog.String("op", op), slog.String("expires_in", sent), slog.Duration("lifetime", life))
		}
	}
	g.Expiry = start.Add(life)
	return g, nil
}

// expiresIn reads raw, the expires_in of LWA's answer (a JSON number, a string
// of digits, or nil when absent), and returns the lifetime to believe, what LWA
// sent as text ("" when nothing), exact true when the lifetime is what LWA
// sent, and ok false when raw is not a whole number.
func expiresIn(raw any) (life time.Duration, sent string, exact, ok bool) {
	var secs float64
	switch v := raw.(type) {
	case nil:
		return DefaultExpiresIn, "", false, true
	case float64:
		secs, sent = v, strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		if strings.TrimSpace(v) == "" { // a form-encoded answer without it
			return DefaultExpiresIn, "", false, true
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, "", false, false
		}
		secs, sent = float64(n), strconv.FormatInt(n, 10)
	default:
		return 0, "", false, false
	}
	switch {
	case secs != math.Trunc(secs):
		return 0, "", false, false
	case secs < MinExpiresIn.Seconds():
		return MinExpiresIn, sent, false, true
	case secs > MaxExpiresIn.Seconds():
		return MaxExpiresIn, sent, false, true
	}
	return time.Duration(secs) * time.Second, sent, true, true
}

// Error is a failed call to LWA. It unwraps to the domain error that classifies
// it (tokens.ErrInvalidGrant, or a *tokens.Error with code EUNAVAILABLE or
// EINTERNAL) and, for network failures, to the transport's error. Its text holds
// the operation, HTTP status and OAuth error code, never a code, token, secret or
// LWA's response body.
type Error struct {
	// Op is "exchange" or "refresh".
	Op string
	// StatusCode is the HTTP status of LWA's last answer, or 0 when none came.
	StatusCode int
	// ErrorCode is LWA's OAuth error code (RFC 6749 §5.2) when it is a known
	// one, "unrecognized" for another, or "" when none was sent.
	ErrorCode string
	// RetryAfter is the wait LWA asked for with Retry-After, or 0.
	RetryAfter time.Duration
	// Attempts is how many requests were made.
	Attempts int
	// Err is the domain error.
	Err error

	cause  error  // the transport's error, for errors.Is(err, context.DeadlineExceeded)
	reason string // a safe, fixed description
	retry  bool   // whether another attempt may succeed
}

// Error returns a description free of secrets.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("lwa: ")
	b.WriteString(e.Op)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
		if e.ErrorCode != "" {
			b.WriteString(" " + e.ErrorCode)
		}
	}
	if e.reason != "" {
		b.WriteString(": " + e.reason)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.cause != nil {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the domain error and, when there is one, the transport's error.
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.Err, e.cause}
	}
	return []error{e.Err}
}

// IsTransient reports whether err says LWA could not be reached or kept failing
// (code EUNAVAILABLE): the same call may succeed later. Every other error from
// Exchange and Refresh is final.
func IsTransient(err error) bool {
	return tokens.ErrorCode(err) == tokens.EUNAVAILABLE
}

// classify turns a failure of x/oauth2 into an *Error. It never keeps x/oauth2's
// own error text, which may quote LWA's response body.
func classify(ctx context.Context, op string, err error) *Error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return classifyResponse(op, re)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &Error{
			Op:     op,
			Err:    tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon did not answer in time"),
			cause:  context.Cause(ctx),
			reason: "no answer before the deadline",
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Transport failure: the URL in it carries no secret, and nothing of the
		// request body. Keep only the innermost error and what kind it was.
		reason := "Login with Amazon could not be reached"
		if ue.Timeout() {
			reason = "Login with Amazon did not answer in time"
		}
		return &Error{
			Op:     op,
			Err:    tokens.Errorf(tokens.EUNAVAILABLE, "%s", reason),
			cause:  ue.Err,
			reason: "transport error",
			retry:  true,
		}
	}
	// x/oauth2 could not read or parse a 2xx answer, or it had no access token.
	return &Error{
		Op:     op,
		Err:    tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon sent a malformed answer"),
		reason: "malformed answer",
	}
}

// classifyResponse classifies LWA's error answer by its OAuth error code and
// HTTP status.
func classifyResponse(op string, re *oauth2.RetrieveError) *Error {
	e := &Error{Op: op, ErrorCode: knownErrorCode(re.ErrorCode)}
	var header http.Header
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
		header = re.Response.Header
	}
	status := e.StatusCode
	switch {
	case re.ErrorCode == "invalid_grant":
		e.Err = tokens.ErrInvalidGrant
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 ||
		re.ErrorCode == "temporarily_unavailable" || re.ErrorCode == "server_error":
		e.Err = tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon is unavailable (HTTP %d)", status)
		e.retry = true
		e.RetryAfter = retryAfter(header)
	case status == http.StatusUnauthorized || re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client":
		e.Err = tokens.Errorf(tokens.EINTERNAL, "Login with Amazon rejected the broker's client credentials (HTTP %d)", status)
	default:
		e.Err = tokens.Errorf(tokens.EINTERNAL, "Login with Amazon rejected the request (HTTP %d)", status)
	}
	return e
}

// knownErrorCode returns code when it is an OAuth error code LWA is known to
// send, so that nothing else of LWA's answer reaches an error text.
func knownErrorCode(code string) string {
	switch code {
	case "":
		return ""
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
		"unsupported_grant_type", "invalid_scope", "server_error", "temporarily_unavailable",
		"access_denied", "authorization_pending", "slow_down", "expired_token":
		return code
	}
	return "unrecognized"
}

// maxRetryAfter caps the Retry-After honoured; longer waits exceed any budget
// anyway and end the retries at once.
const maxRetryAfter = time.Hour

// retryAfter parses a Retry-After header, in seconds or as an HTTP date; it
// returns 0 when there is none or it cannot be read.
func retryAfter(h http.Header) time.Duration {
	return retryafter.Parse(h.Get("Retry-After"), time.Now(), maxRetryAfter)
}
