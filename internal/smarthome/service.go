package smarthome

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// MaxBody is the size in bytes of the largest directive the broker reads.
const MaxBody = 64 << 10

// Result is the broker's answer to one directive: an HTTP status and the
// Response that the skill returns to Alexa as it is, whatever the status.
type Result struct {
	// Status is the HTTP status: 200 with an AcceptGrant.Response; 400, 401,
	// 429, 503 or 500 with an ErrorResponse (see status in errors.go).
	Status int
	// Body is the JSON of the Response, {"event":{…}}, with a new messageId.
	// It never holds the code or the grantee's token.
	Body []byte
	// RetryAfter is, with a 429, how long to wait before the next directive
	// of the user or client: whole seconds, at least one. It is 0 otherwise.
	RetryAfter time.Duration
	// Err is why the directive failed; nil when it was carried out. It is
	// for the caller's logs and for callers that answer in other terms (a
	// gRPC status): its text may name the user, which Body does not.
	Err error
}

// Service carries out AcceptGrant directives. It is safe for concurrent use
// once its fields are set.
type Service struct {
	authn  auth.Authenticator
	logger *slog.Logger

	// Limiter limits the hand-overs of each user and each client; one beyond
	// the limit is answered 429 with RetryAfter and costs no LWA call. The
	// reciprocal endpoint's Limiter may be shared, so that a user's or a
	// client's hand-overs count together whichever way they come. Set it
	// before the Service serves; nil limits nothing.
	Limiter *reciprocal.Limiter
}

// NewService returns a Service whose grantee tokens authn verifies, the
// Authenticator of the reciprocal endpoint's bearer tokens; logger (nil
// discards) gets one line per directive, never a secret.
func NewService(authn auth.Authenticator, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{authn: authn, logger: logger}
}

// AcceptGrant carries out directive, the JSON of the message Alexa sent the
// skill ({"directive":{…}}, as the skill received it), for skill: see Accept.
// A directive over MaxBody bytes, or one that is not the JSON of a directive,
// is answered 400. It is the one entry point of the HTTP handler and of the
// gRPC method.
func (s *Service) AcceptGrant(ctx context.Context, skill reciprocal.Skill, directive []byte) Result {
	if len(directive) > MaxBody {
		return s.fail(ctx, skill, tokens.Errorf(tokens.EINVALID, "the directive is larger than 64 KiB"))
	}
	var req struct {
		Directive *Directive `json:"directive"`
	}
	if err := json.Unmarshal(directive, &req); err != nil {
		// The decoder's message may quote the body; it is not shown.
		return s.fail(ctx, skill, tokens.Errorf(tokens.EINVALID, "the body is not the JSON of an AcceptGrant directive"))
	}
	if req.Directive == nil {
		return s.fail(ctx, skill, tokens.Errorf(tokens.EINVALID, "the body holds no directive"))
	}
	return s.Accept(ctx, skill, *req.Directive)
}

// Accept carries out d for skill and answers within reciprocal.Deadline: it
// validates d (Directive.Validate), verifies the grantee's token with the
// Service's Authenticator, takes one hand-over of the token's user and client
// from the Limiter, checks that the token's client is one of the skill's
// Alexa clients, and has skill.Tokens exchange the code for the token's user
// (its sub), remembering the skill's region. A malformed directive is
// answered before the token is verified. When LWA answers after the
// deadline, the exchange runs on and stores the link all the same
// (tokens.Service.Exchange): Alexa's repeat of the directive is then answered
// from it without a second exchange.
//
// Its Result is 200 with an AcceptGrant.Response when the code was exchanged
// (or had been, for the same user), and otherwise an ErrorResponse with the
// status of the error table (status in errors.go): 400 for an EINVALID error
// naming the field at fault, for ErrForeignClient, and for an error wrapping
// tokens.ErrInvalidGrant (LWA refused the code, or it was used for another
// user); 401 for an EUNAUTHENTICATED error (no grantee token, or one that is
// malformed, expired, wrongly signed, from another issuer or audience, or
// names no user); 429 for an ERATELIMIT error; 503 for an EUNAVAILABLE error
// (the signing keys, LWA or the store could not be reached in time); 500 for
// anything else, such as a skill without Tokens.
func (s *Service) Accept(ctx context.Context, skill reciprocal.Skill, d Directive) Result {
	ctx, cancel := context.WithTimeout(ctx, reciprocal.Deadline)
	defer cancel()
	if err := d.Validate(); err != nil {
		return s.fail(ctx, skill, err)
	}
	if skill.Tokens == nil {
		return s.fail(ctx, skill, fmt.Errorf("skill %q has no token service", skill.ID))
	}
	token := d.Payload.Grantee.Token
	if token == "" {
		return s.fail(ctx, skill, tokens.Errorf(tokens.EUNAUTHENTICATED, "directive.payload.grantee.token is required"))
	}
	p, err := s.authn.Verify(ctx, token.Reveal())
	if err != nil {
		return s.fail(ctx, skill, fmt.Errorf("grantee token: %w", err))
	}
	if p.Subject == "" {
		return s.fail(ctx, skill, tokens.Errorf(tokens.EUNAUTHENTICATED, "the grantee token names no user"))
	}
	if tokens.CheckUserID(p.Subject) != nil {
		return s.fail(ctx, skill, tokens.Errorf(tokens.EUNAUTHENTICATED, "the grantee token's user id holds a NUL byte"))
	}
	if wait, err := s.Limiter.Allow(p); err != nil {
		res := s.fail(ctx, skill, err)
		res.RetryAfter = wait
		return res
	}
	if !allows(skill, p.ClientID) {
		return s.fail(ctx, skill, fmt.Errorf("client %q of user %q: %w", p.ClientID, p.Subject, ErrForeignClient))
	}
	if err := reciprocal.ExchangeCode(ctx, skill.Tokens, p.Subject, d.Payload.Grant.Code, skill.Region); err != nil {
		return s.fail(ctx, skill, err)
	}
	s.logger.InfoContext(ctx, "accepted grant", "skill_id", skill.ID, "user_id", p.Subject, "client_id", p.ClientID)
	return Result{Status: http.StatusOK, Body: answer(NameResponse, EventPayload{})}
}

// ErrorResult returns the Result of a directive that failed with err: an
// ErrorResponse with the status and the reason of the error table (status in
// errors.go). Callers use it for the failures they find before the Service is
// asked, such as a skill_id that names no skill (an EINVALID error naming
// skill_id: 400).
func ErrorResult(err error) Result {
	code, reason := status(err)
	return Result{
		Status: code,
		Body:   answer(NameErrorResponse, EventPayload{Type: ErrorType, Message: messagePrefix + reason}),
		Err:    err,
	}
}

// fail returns the Result of err, logging what the caller is not told.
func (s *Service) fail(ctx context.Context, skill reciprocal.Skill, err error) Result {
	res := ErrorResult(err)
	if res.Status >= http.StatusInternalServerError {
		s.logger.ErrorContext(ctx, "AcceptGrant failed", "skill_id", skill.ID, "status", res.Status, "err", err.Error())
	} else {
		s.logger.InfoContext(ctx, "AcceptGrant refused", "skill_id", skill.ID, "status", res.Status, "err", err.Error())
	}
	return res
}

// answer returns the JSON of a Response named name, with a new messageId.
func answer(name string, payload EventPayload) []byte {
	b, err := json.Marshal(Response{Event: Event{
		Header: Header{
			Namespace:      Namespace,
			Name:           name,
			MessageID:      uuid.NewString(),
			PayloadVersion: PayloadVersion,
		},
		Payload: payload,
	}})
	if err != nil {
		panic(fmt.Sprintf("smarthome: marshal a response: %v", err)) // strings only: cannot fail
	}
	return b
}
