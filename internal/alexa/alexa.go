// Package alexa is the broker's client of the Alexa APIs. Client posts a user's
// baby-activity profile report to the Alexa Health profile API; EventGateway
// sends a smart-home skill's event to the Alexa Event Gateway, the user's token
// added as the event's scope. Both send with that user's LWA access token to
// the API host of the user's region, and turn the answer into the outcome the
// deliverer acts on (delivered, token rejected, permission withdrawn, retry
// later, or refused for good). RegionsFor decides which host serves each
// region: Amazon's regional hosts when the broker talks to Amazon's API, the one
// configured host otherwise.
//
// They make exactly one request per Send and never retry: the deliverer owns
// the retry schedule, so that it can persist attempts and honour Retry-After
// across restarts. This package is the one place that opens the access token to
// send it; no error it returns contains the token, nor the request.
package alexa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/retryafter"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// DefaultBaseURL is the Alexa API host of the North American region.
const DefaultBaseURL = "https://api.amazonalexa.com"

// ProfilePath is the path of the Alexa Health profile API below a base URL.
const ProfilePath = "/v1/health/profile"

// DefaultHTTPTimeout bounds one request of the default HTTP client.
const DefaultHTTPTimeout = 10 * time.Second

// MaxRetryAfter caps the wait taken from a Retry-After header, so that a
// mistaken or hostile answer cannot park a report for days.
const MaxRetryAfter = time.Hour

// maxBody is the most of an answer's body that is read.
const maxBody = 64 << 10

// maxExcerpt is the most characters of an error answer quoted in an error.
const maxExcerpt = 160

// Options configures a Client. The zero value posts everything to
// DefaultBaseURL.
type Options struct {
	// BaseURL is the API host used for the empty region and for any region
	// not in Regions; empty means DefaultBaseURL. A path prefix is kept.
	BaseURL string
	// Regions maps a region name, such as "EU", to its API base URL; names
	// match without regard to case. Nil means no regional hosts: every report
	// goes to BaseURL. The broker passes RegionsFor(BaseURL).
	Regions map[string]string
	// HTTPClient makes the requests; its Timeout bounds each one. Nil means a
	// client with DefaultHTTPTimeout that does not follow redirects.
	HTTPClient *http.Client
	// Now is the clock against which a Retry-After date is read; nil means
	// time.Now.
	Now func() time.Time
	// Observer is told of every request to the API; nil tells no one.
	Observer Observer
}

// The calls an Observer is told of.
const (
	// CallHealth is a post of a profile report to the Alexa Health API.
	CallHealth = "alexa_health"
	// CallEvents is a post of an event to the Alexa Event Gateway.
	CallEvents = "alexa_events"
)

// The outcomes of a request to an Alexa API.
const (
	// OutcomeOK: the API answered 2xx.
	OutcomeOK = "ok"
	// OutcomeRejected: the API refused the request (401, 403, any other 4xx
	// but 429).
	OutcomeRejected = "rejected"
	// OutcomeThrottled: the API answered 429 Too Many Requests.
	OutcomeThrottled = "throttled"
	// OutcomeError: the API failed (5xx) or answered otherwise.
	OutcomeError = "error"
	// OutcomeUnreachable: no answer came (network failure, time-out, the
	// caller's deadline).
	OutcomeUnreachable = "unreachable"
)

// Observer is told of every request to an Alexa API, so that the broker can
// count them without this package knowing how. Implementations must be safe
// for concurrent use and must not block.
type Observer interface {
	// ObserveAmazonCall is told that a request of call (CallHealth,
	// CallEvents) ended with outcome (OutcomeOK, ...) after d.
	ObserveAmazonCall(call, outcome string, d time.Duration)
}

// statusOutcome is the Observer's outcome of an answer with HTTP status.
func statusOutcome(status int) string {
	switch {
	case status >= 200 && status < 300:
		return OutcomeOK
	case status == http.StatusTooManyRequests:
		return OutcomeThrottled
	case status >= 400 && status < 500:
		return OutcomeRejected
	}
	return OutcomeError
}

// Client is the broker's Alexa Health API client. It is safe for concurrent use.
type Client struct {
	api
}

var _ reports.Sender = (*Client)(nil)

// New returns a Client configured by opts. It returns an EINVALID error when
// BaseURL or a Regions URL is not an absolute http(s) URL without credentials,
// query or fragment, or a region name is empty.
func New(opts Options) (*Client, error) {
	a, err := newAPI(opts, ProfilePath, CallHealth)
	if err != nil {
		return nil, err
	}
	return &Client{api: a}, nil
}

// api is what the clients of the Alexa APIs share: the endpoint URL of one
// API path on each region's host, the HTTP client and the clock.
type api struct {
	base    string            // endpoint URL of the default host
	regions map[string]string // upper-case region → endpoint URL
	http    *http.Client
	now     func() time.Time
	call    string // the Observer's name of the API
	obs     Observer
}

// do sends req and tells the observer how it went.
func (a api) do(req *http.Request) (*http.Response, error) {
	began := time.Now()
	resp, err := a.http.Do(req)
	if a.obs != nil {
		outcome := OutcomeUnreachable
		if err == nil {
			outcome = statusOutcome(resp.StatusCode)
		}
		a.obs.ObserveAmazonCall(a.call, outcome, time.Since(began))
	}
	return resp, err
}

// newAPI checks opts and returns the endpoints of path below its hosts, with
// New's errors.
func newAPI(opts Options, path, call string) (api, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	base, err := endpoint(opts.BaseURL, path)
	if err != nil {
		return api{}, tokens.Errorf(tokens.EINVALID, "alexa: base URL %s", err)
	}
	a := api{
		base:    base,
		regions: make(map[string]string, len(opts.Regions)),
		http:    opts.HTTPClient,
		now:     opts.Now,
		call:    call,
		obs:     opts.Observer,
	}
	for name, raw := range opts.Regions {
		key := strings.ToUpper(strings.TrimSpace(name))
		if key == "" {
			return api{}, tokens.Errorf(tokens.EINVALID, "alexa: region names must not be empty")
		}
		if a.regions[key], err = endpoint(raw, path); err != nil {
			return api{}, tokens.Errorf(tokens.EINVALID, "alexa: region %q URL %s", key, err)
		}
	}
	if a.http == nil {
		a.http = &http.Client{
			Timeout: DefaultHTTPTimeout,
			// A redirected POST would lose its body, or carry the token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// endpoint checks a base URL and returns the URL of path below it. Its error
// text describes the problem without quoting the URL, which may hold
// credentials.
func endpoint(raw, path string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return "", errors.New("must be an absolute http(s) URL")
	case u.User != nil:
		return "", errors.New("must not hold credentials")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/") + path, nil
}

// endpointOf returns the API's URL on the host of region: the region's host
// when Regions names it, BaseURL's otherwise.
func (a api) endpointOf(region string) string {
	if u, ok := a.regions[strings.ToUpper(strings.TrimSpace(region))]; ok {
		return u
	}
	return a.base
}

// Endpoint returns the URL a report for region is posted to: the region's host
// when Regions names it, BaseURL's otherwise.
func (c *Client) Endpoint(region string) string { return c.endpointOf(region) }

// Send posts r to the profile API of region ("" for BaseURL) with accessToken,
// once. It returns nil when the API answered 2xx; reports.ErrTokenRejected
// (wrapped) on 401 or when accessToken is empty; reports.ErrPermissionWithdrawn
// (wrapped) on 403; a bare *reports.RetryError on 429 and 5xx (with the
// Retry-After wait, at most MaxRetryAfter) and, with Status 0, when no answer
// came: network failures, time-outs, and ctx ending; and an EINVALID error for r
// nil and for any other answer, such as 400, quoting at most a short, sanitized
// excerpt of the API's message.
func (c *Client) Send(ctx context.Context, region string, accessToken tokens.Secret, r *reports.Report) error {
	if r == nil {
		return tokens.Errorf(tokens.EINVALID, "alexa: no report to send")
	}
	if accessToken == "" {
		return fmt.Errorf("alexa: report %s: empty access token: %w", r.MessageID, reports.ErrTokenRejected)
	}
	body, err := json.Marshal(request{Report: report{MessageID: r.MessageID, Profiles: r.Profiles}})
	if err != nil {
		return tokens.Errorf(tokens.EINVALID, "alexa: report %s cannot be encoded: %v", r.MessageID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint(region), bytes.NewReader(body))
	if err != nil { // the URL was checked in New; only a nil ctx gets here
		return fmt.Errorf("alexa: report %s: build request: %w", r.MessageID, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := c.do(req)
	if err != nil {
		return &reports.RetryError{Reason: transportReason(ctx, err, accessToken)}
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()

	status := resp.StatusCode
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusUnauthorized:
		return fmt.Errorf("alexa: report %s: HTTP %d: %w", r.MessageID, status, reports.ErrTokenRejected)
	case status == http.StatusForbidden:
		return fmt.Errorf("alexa: report %s: HTTP %d: %w", r.MessageID, status, reports.ErrPermissionWithdrawn)
	case status == http.StatusTooManyRequests || status >= 500:
		reason := http.StatusText(status)
		if reason == "" {
			reason = "server error"
		}
		if ex := excerpt(resp.Header, answer, accessToken); ex != "" {
			reason += ": " + ex
		}
		return &reports.RetryError{
			Status: status,
			After:  retryAfter(resp.Header.Get("Retry-After"), c.now()),
			Reason: reason,
		}
	}
	msg := strings.TrimSpace(fmt.Sprintf("%d %s", status, http.StatusText(status)))
	if ex := excerpt(resp.Header, answer, accessToken); ex != "" {
		msg += ": " + ex
	}
	return tokens.Errorf(tokens.EINVALID, "Alexa refused the report: %s", msg)
}

// request is the body the API expects: {"report":{"messageId","profiles"}}.
type request struct {
	Report report `json:"report"`
}

type report struct {
	MessageID string            `json:"messageId"`
	Profiles  []reports.Profile `json:"profiles"`
}

// transportReason describes why no answer came, without the URL or the request.
func transportReason(ctx context.Context, err error, token tokens.Secret) string {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "no answer before the deadline"
		}
		return "the request was cancelled"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "no answer in time"
		}
		// The innermost error names the dialled address, not the request.
		err = ue.Err
	}
	return redact(err.Error(), token)
}

// retryAfter reads a Retry-After value, in seconds or as an HTTP date, relative
// to now. It returns 0 when the value is absent, unreadable or in the past, and
// at most MaxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	return retryafter.Parse(v, now, MaxRetryAfter)
}

// tokenLike matches what looks like an LWA token or a bearer credential, so that
// an answer quoting one is never repeated even when it is not this request's.
var tokenLike = regexp.MustCompile(`(?i)(Atz[a-z](\||%7C)\S+|bearer\s+\S+)`)

// excerpt returns a short, printable excerpt of an error answer: the code and
// message of a JSON body (the Health API's {"code","message"}, or the Event
// Gateway's {"payload":{"code","description"}}), or the first line of a
// text/plain one; never HTML or other content. Anything like a token is
// replaced, and the text is cut where a JSON object or markup starts, so that a
// request echoed back is not repeated.
func excerpt(h http.Header, body []byte, token tokens.Secret) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	var text string
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		var e struct {
			Code    any             `json:"code"`
			Type    any             `json:"type"`
			Message any             `json:"message"`
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(body, &e) != nil {
			return ""
		}
		var p struct {
			Code        any `json:"code"`
			Description any `json:"description"`
		}
		_ = json.Unmarshal(e.Payload, &p) // absent or not an object: no parts
		var parts []string
		for _, v := range []any{e.Code, e.Type, e.Message, p.Code, p.Description} {
			if s, ok := v.(string); ok && s != "" {
				parts = append(parts, s)
			}
		}
		text = strings.Join(parts, ": ")
	case mt == "text/plain":
		text, _, _ = strings.Cut(string(body), "\n")
	default:
		return ""
	}
	text = redact(text, token)
	// The API's own messages are sentences; an object or markup in one is
	// the request echoed back, which stays out of errors.
	if i := strings.IndexAny(text, "{<"); i >= 0 {
		text = text[:i]
	}
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	if rs := []rune(text); len(rs) > maxExcerpt {
		text = string(rs[:maxExcerpt]) + "…"
	}
	return text
}

// redact replaces token and anything that looks like a token in s.
func redact(s string, token tokens.Secret) string {
	if t := token.Reveal(); t != "" {
		s = strings.ReplaceAll(s, t, "[REDACTED]")
	}
	return tokenLike.ReplaceAllString(s, "[REDACTED]")
}
