// Package reciprocal is Alexa's hand-over of a user's Login with Amazon
// authorization code: the partner's reciprocal authorization endpoint. It
// accepts both request forms Alexa uses (Amazon's, with the user's JWT as a
// bearer header, and the IETF draft's, with the JWT in the form), checks the
// client, has the code exchanged, and answers in RFC 6749 §5.2's terms.
package reciprocal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The grant types Alexa sends.
const (
	GrantType     = "reciprocal_authorization_code"
	GrantTypeIETF = "urn:ietf:params:oauth:grant-type:reciprocal"
)

// Deadline is how long one hand-over may take, LWA's retries included: Alexa
// gives its token calls 4.5 s, and the answer must reach it before then.
const Deadline = 4 * time.Second

// Errors of a hand-over beyond the domain's own; each maps to one RFC 6749 code.
var (
	// ErrUnsupportedGrantType is returned for a grant_type other than Alexa's two.
	ErrUnsupportedGrantType = &tokens.Error{Code: tokens.EINVALID, Message: "unsupported grant_type"}
	// ErrInvalidClient is returned when client_id is not an allowed Alexa client
	// or differs from the bearer token's client_id claim.
	ErrInvalidClient = &tokens.Error{Code: tokens.EPERMISSION, Message: "client_id is not an allowed Alexa client of this token"}
)

// Exchanger is what a hand-over needs of the token service.
type Exchanger interface {
	Exchange(ctx context.Context, userID string, code tokens.Secret, region string) (*tokens.Link, error)
}

// Service checks and carries out hand-overs. It is safe for concurrent use.
type Service struct {
	tokens  Exchanger
	clients []string
	// Region is the Alexa API region new links remember; "" for the default host.
	Region string
}

// NewService returns a Service that accepts the Alexa client ids in clients.
func NewService(tokens Exchanger, clients []string) *Service {
	return &Service{tokens: tokens, clients: slices.Clone(clients)}
}

// Request is one hand-over, in either form.
type Request struct {
	GrantType string
	Code      tokens.Secret
	ClientID  string
}

// Validate returns an EINVALID error naming a missing field, or
// ErrUnsupportedGrantType.
func (req Request) Validate() error {
	switch {
	case req.GrantType == "":
		return tokens.Errorf(tokens.EINVALID, "grant_type is required")
	case req.GrantType != GrantType && req.GrantType != GrantTypeIETF:
		return ErrUnsupportedGrantType
	case req.Code == "":
		return tokens.Errorf(tokens.EINVALID, "code is required")
	case req.ClientID == "":
		return tokens.Errorf(tokens.EINVALID, "client_id is required")
	}
	return nil
}

// Authorize exchanges the code of req for the user that p, the verified bearer
// token, names, and stores the user's tokens; it returns within Deadline.
//
// It returns an EINVALID error for a missing field, ErrUnsupportedGrantType,
// ErrInvalidClient, an error wrapping tokens.ErrInvalidGrant when LWA refused the
// code or the code belongs to another user, and an EUNAVAILABLE error when LWA or
// the store could not be reached in time.
func (s *Service) Authorize(ctx context.Context, p auth.Principal, req Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	switch {
	case p.Subject == "":
		return tokens.Errorf(tokens.EUNAUTHENTICATED, "token names no user")
	case !slices.Contains(s.clients, req.ClientID) || req.ClientID != p.ClientID:
		return ErrInvalidClient
	}
	ctx, cancel := context.WithTimeout(ctx, Deadline)
	defer cancel()
	if _, err := s.tokens.Exchange(ctx, p.Subject, req.Code, s.Region); err != nil {
		if ctx.Err() != nil && tokens.ErrorCode(err) == tokens.EINTERNAL {
			return fmt.Errorf("hand-over of user %q: %w", p.Subject, tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon did not answer in time"))
		}
		return fmt.Errorf("hand-over of user %q: %w", p.Subject, err)
	}
	return nil
}

// oauthError returns the RFC 6749 §5.2 error code and HTTP status of an error
// of Authorize.
func oauthError(err error) (code string, status int) {
	switch {
	case errors.Is(err, tokens.ErrInvalidGrant):
		return "invalid_grant", 400
	case errors.Is(err, ErrUnsupportedGrantType):
		return "unsupported_grant_type", 400
	case errors.Is(err, ErrInvalidClient):
		return "invalid_client", 400
	}
	switch tokens.ErrorCode(err) {
	case tokens.EINVALID:
		return "invalid_request", 400
	case tokens.EUNAUTHENTICATED:
		return "invalid_token", 401
	case tokens.EUNAVAILABLE:
		return "temporarily_unavailable", 503
	}
	return "server_error", 500
}
