package alexa

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// EventsPath is the path of the Alexa Event Gateway below a base URL.
const EventsPath = "/v3/events"

// The codes of the Event Gateway's 403 answers that mean the user disabled the
// skill, never enabled it, or withdrew its permission to send events: the
// link must be made again.
const (
	CodeSkillDisabled          = "SKILL_DISABLED_EXCEPTION"
	CodeSkillNeverEnabled      = "SKILL_NEVER_ENABLED_EXCEPTION"
	CodeInsufficientPermission = "INSUFFICIENT_PERMISSION_EXCEPTION"
)

// withdrawnCodes lists the 403 codes that mean reports.ErrPermissionWithdrawn.
var withdrawnCodes = []string{CodeSkillDisabled, CodeSkillNeverEnabled, CodeInsufficientPermission}

// EventGateway is the broker's client of the Alexa Event Gateway: it sends a
// smart-home skill's events (Alexa.ChangeReport, asynchronous responses,
// Alexa.Discovery AddOrUpdateReport and DeleteReport, …) on a user's behalf,
// with that user's LWA access token, to the gateway of the user's region. It
// is configured like Client, by Options: the broker passes the same BaseURL
// and RegionsFor(BaseURL), so that Amazon's regional hosts serve their regions
// and any other host serves them all. It is safe for concurrent use.
type EventGateway struct {
	api
}

// NewEventGateway returns an EventGateway configured by opts, with New's
// errors: an EINVALID error when BaseURL or a Regions URL is not an absolute
// http(s) URL without credentials, query or fragment, or a region name is
// empty.
func NewEventGateway(opts Options) (*EventGateway, error) {
	a, err := newAPI(opts, EventsPath, CallEvents)
	if err != nil {
		return nil, err
	}
	return &EventGateway{api: a}, nil
}

// Endpoint returns the URL an event for region is posted to: /v3/events on the
// region's host when Regions names it, on BaseURL's otherwise.
func (g *EventGateway) Endpoint(region string) string { return g.endpointOf(region) }

// Send posts message to the Event Gateway of region ("" for BaseURL) with
// accessToken, once. message is the JSON object {"event":…,"context":…} that
// reports.CheckAlexaEvent accepts: without a scope. Send adds
// {"type":"BearerToken","token":accessToken} as event.endpoint.scope, or as
// event.payload.scope when the event has no endpoint (Alexa.Discovery
// AddOrUpdateReport and DeleteReport), and sends the token as
// Authorization: Bearer too.
//
// It returns nil when the gateway answered 2xx (202 Accepted);
// reports.ErrTokenRejected (wrapped) on 401 and when accessToken is empty;
// reports.ErrPermissionWithdrawn (wrapped) on 403 with the code
// CodeSkillDisabled, CodeSkillNeverEnabled or CodeInsufficientPermission; a
// bare *reports.RetryError on 429 and 5xx (with the Retry-After wait, at most
// MaxRetryAfter) and, with Status 0, when no answer came: network failures,
// time-outs, and ctx ending; and an EINVALID error for a message that
// reports.CheckAlexaEvent refuses or that is larger than reports.MaxBodyBytes
// with the scope, and for any other answer, such as 400, 404, 413 or a 403
// with another code, quoting the gateway's code and a short, sanitized
// excerpt of its description. No error holds the token.
func (g *EventGateway) Send(ctx context.Context, region string, accessToken tokens.Secret, message []byte) error {
	if err := reports.CheckAlexaEvent(message); err != nil {
		return fmt.Errorf("alexa: event not sent: %w", err)
	}
	id := reports.AlexaEventMessageID(message)
	if accessToken == "" {
		return fmt.Errorf("alexa: event %s: empty access token: %w", id, reports.ErrTokenRejected)
	}
	body, err := withScope(message, accessToken)
	if err != nil { // CheckAlexaEvent accepted the message; only a bug gets here
		return fmt.Errorf("alexa: event %s: add the scope: %w", id, err)
	}
	if len(body) > reports.MaxBodyBytes {
		return tokens.Errorf(tokens.EINVALID, "event %s is %d bytes with the token, more than the %d bytes the Alexa Event Gateway takes", id, len(body), reports.MaxBodyBytes)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.Endpoint(region), bytes.NewReader(body))
	if err != nil { // the URL was checked in NewEventGateway; only a nil ctx gets here
		return fmt.Errorf("alexa: event %s: build request: %w", id, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := g.do(req)
	if err != nil {
		return &reports.RetryError{Reason: "Alexa Event Gateway: " + transportReason(ctx, err, accessToken)}
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()

	status := resp.StatusCode
	if status >= 200 && status < 300 {
		return nil
	}
	// ex quotes the gateway's code and description; suffix adds it to a text.
	ex := excerpt(resp.Header, answer, accessToken)
	suffix := func(text string) string {
		if ex == "" {
			return text
		}
		return text + ": " + ex
	}
	switch code := exceptionCode(answer, accessToken); {
	case status == http.StatusUnauthorized:
		return fmt.Errorf("alexa: event %s: %w", id, refused(reports.ErrTokenRejected, suffix(fmt.Sprintf("the Alexa Event Gateway answered %d", status))))
	case status == http.StatusForbidden && slices.Contains(withdrawnCodes, code):
		return fmt.Errorf("alexa: event %s: %w", id, refused(reports.ErrPermissionWithdrawn, suffix(fmt.Sprintf("the Alexa Event Gateway answered %d", status))))
	case status == http.StatusTooManyRequests || status >= 500:
		reason := http.StatusText(status)
		if reason == "" {
			reason = "server error"
		}
		return &reports.RetryError{
			Status: status,
			After:  retryAfter(resp.Header.Get("Retry-After"), g.now()),
			Reason: suffix("Alexa Event Gateway: " + reason),
		}
	}
	return tokens.Errorf(tokens.EINVALID, "the Alexa Event Gateway refused the event: %s",
		suffix(strings.TrimSpace(fmt.Sprintf("%d %s", status, http.StatusText(status)))))
}

// refusal is a sentinel error of the reports package told with the gateway's
// answer: errors.Is matches the sentinel, and its message, the one callers and
// the delivery's last error see, says what the gateway answered.
type refusal struct {
	told     *tokens.Error
	sentinel *tokens.Error
}

// refused returns sentinel told with the gateway's answer.
func refused(sentinel *tokens.Error, answered string) error {
	return &refusal{
		told:     tokens.Errorf(sentinel.Code, "%s (%s)", sentinel.Message, answered),
		sentinel: sentinel,
	}
}

// Error returns the told message with its code.
func (r *refusal) Error() string { return r.told.Error() }

// Unwrap returns the told error first, so that tokens.ErrorMessage shows it,
// and the sentinel.
func (r *refusal) Unwrap() []error { return []error{r.told, r.sentinel} }

// scope is the token's place in an event, as Amazon names its fields.
type scope struct {
	Type  string `json:"type"`
	Token string `json:"token"`
}

// withScope returns message with the scope of token added to event.endpoint,
// or to event.payload when the event has no endpoint. Every other member keeps
// its value; the members of each object are written in key order.
func withScope(message []byte, token tokens.Secret) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(message, &top); err != nil {
		return nil, fmt.Errorf("message: %w", err)
	}
	var event map[string]json.RawMessage
	if err := json.Unmarshal(top["event"], &event); err != nil {
		return nil, fmt.Errorf("event: %w", err)
	}
	where := "endpoint"
	if _, ok := event[where]; !ok {
		where = "payload"
	}
	var holder map[string]json.RawMessage
	if err := json.Unmarshal(event[where], &holder); err != nil {
		return nil, fmt.Errorf("event.%s: %w", where, err)
	}
	var err error
	if holder["scope"], err = marshal(scope{Type: "BearerToken", Token: token.Reveal()}); err != nil {
		return nil, err
	}
	if event[where], err = marshal(holder); err != nil {
		return nil, err
	}
	if top["event"], err = marshal(event); err != nil {
		return nil, err
	}
	return marshal(top)
}

// marshal encodes v as compact JSON without escaping <, > and &, so that the
// event's own text reaches Amazon as it was written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// exceptionCode returns payload.code of the gateway's error answer
// {"header":…,"payload":{"code","description"}}, or "" when the answer has
// none. A code that looks like a token is never returned.
func exceptionCode(answer []byte, token tokens.Secret) string {
	var ex struct {
		Payload struct {
			Code string `json:"code"`
		} `json:"payload"`
	}
	if json.Unmarshal(answer, &ex) != nil {
		return ""
	}
	code := ex.Payload.Code
	for _, r := range code {
		if (r < 'A' || r > 'Z') && r != '_' && (r < '0' || r > '9') {
			return "" // Amazon's codes are upper-case words; anything else is not quoted
		}
	}
	if len(code) > 64 || redact(code, token) != code {
		return ""
	}
	return code
}
