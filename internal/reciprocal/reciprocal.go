// Package reciprocal is Alexa's hand-over of a user's Login with Amazon
// authorization code: the partner's reciprocal authorization endpoint. It
// accepts both request forms Alexa uses (Amazon's, with the user's JWT as a
// bearer header, and the IETF draft's, with the JWT in the form), checks the
// client, has the code exchanged, and answers in RFC 6749 §5.2's terms.
//
// Its errors are the one deliberate exception to the broker's single error
// table (internal/server's outcomes): Alexa reads this endpoint's answers as an
// OAuth 2.0 token endpoint's, so errors are RFC 6749 §5.2 JSON with their own
// HTTP statuses (see oauthError in errors.go), not gRPC status JSON. The gRPC
// face of the hand-over, ReciprocalService/Authorize in internal/server, answers
// through the broker's table like every other method.
package reciprocal

import (
	"context"
	"fmt"
	"time"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The grant types Alexa sends.
const (
	// GrantType is the grant_type of Amazon's form, with the user's JWT as a
	// bearer header.
	GrantType = "reciprocal_authorization_code"
	// GrantTypeIETF is the grant_type of the IETF draft's form, with the JWT in
	// the form's access_token field.
	GrantTypeIETF = "urn:ietf:params:oauth:grant-type:reciprocal"
)

// Deadline is how long one hand-over may take, LWA's retries included: Alexa
// gives its token calls 4.5 s, and the answer must reach it before then. Each
// way in starts it as the call arrives, before the user's token is verified,
// so that a slow fetch of the signing keys counts against it too: the form
// endpoint's Handler, the gRPC method's interceptor (internal/server) and
// smarthome.Service.Accept. ExchangeCode caps the exchange by it as well.
const Deadline = 4 * time.Second

// Exchanger is what a hand-over needs of the token service; tokens.Service
// implements it.
type Exchanger interface {
	// Exchange trades the authorization code for userID's LWA tokens and stores
	// them, remembering region for the link. It returns an error wrapping
	// tokens.ErrInvalidGrant when LWA refused the code or the code was used for
	// another user, an EUNAVAILABLE error when LWA or the store cannot be
	// reached, and an EINVALID error for an empty user or code.
	Exchange(ctx context.Context, userID string, code tokens.Secret, region string) (*tokens.Link, error)
}

var _ Exchanger = (*tokens.Service)(nil)

// Skill is one skill whose hand-overs a Service takes: its Alexa clients, the
// region its new links remember, and its token service.
type Skill struct {
	// ID is the broker's name of the skill.
	ID string
	// ClientIDs are the client ids the partner issued to Alexa for the skill;
	// a client id belongs to one skill only.
	ClientIDs []string
	// Region is the Alexa API region new links remember; "" for the default
	// host.
	Region string
	// Tokens exchanges the skill's codes with its LWA credentials.
	Tokens Exchanger
}

// Service checks and carries out hand-overs. It is safe for concurrent use.
type Service struct {
	byClient map[string]Skill
	byID     map[string]Skill
}

// NewService returns a Service of skills, each accepting its Alexa client
// ids. When two skills name one client id, the first keeps it (the skills
// file refuses that before).
func NewService(skills ...Skill) *Service {
	s := &Service{byClient: map[string]Skill{}, byID: map[string]Skill{}}
	for _, sk := range skills {
		s.byID[sk.ID] = sk
		for _, id := range sk.ClientIDs {
			if _, taken := s.byClient[id]; !taken {
				s.byClient[id] = sk
			}
		}
	}
	return s
}

// Skill returns the skill with id, for the hand-overs that name their skill
// rather than find it from their client (AcceptGrant).
func (s *Service) Skill(id string) (Skill, bool) {
	sk, ok := s.byID[id]
	return sk, ok
}

// Request is one hand-over, in either form.
type Request struct {
	// GrantType is the form's grant_type: GrantType or GrantTypeIETF.
	GrantType string
	// Code is the LWA authorization code Alexa hands over.
	Code tokens.Secret
	// ClientID is the client id the partner issued to Alexa.
	ClientID string
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
// token, names, and stores the user's tokens; it returns within Deadline, and
// by ctx's deadline when that comes first (the caller's Deadline, started
// before it verified the token). When
// LWA answers later, the exchange runs on and stores the link all the same
// (tokens.Service.Exchange), so that Alexa's retry of the code is answered
// from it, or waits for it within its own Deadline.
//
// The form's client id must be an Alexa client of one of the skills, which
// is the skill of the link, and equal p.ClientID, the client that the token's
// claim profile reads.
//
// It returns an EINVALID error for a missing field, ErrUnsupportedGrantType,
// an EUNAUTHENTICATED error when p names no user, ErrInvalidClient, an error
// wrapping tokens.ErrInvalidGrant when LWA refused the code or the code belongs
// to another user, and an EUNAVAILABLE error when LWA or the store could not be
// reached in time.
func (s *Service) Authorize(ctx context.Context, p auth.Principal, req Request) error {
	if err := req.Validate(); err != nil {
		return err
	}
	skill, known := s.byClient[req.ClientID]
	switch {
	case p.Subject == "":
		return tokens.Errorf(tokens.EUNAUTHENTICATED, "token names no user")
	case tokens.CheckUserID(p.Subject) != nil:
		return tokens.Errorf(tokens.EUNAUTHENTICATED, "token's user id holds a NUL byte")
	case !known || req.ClientID != p.ClientID:
		return ErrInvalidClient
	}
	return ExchangeCode(ctx, skill.Tokens, p.Subject, req.Code, skill.Region)
}

// ExchangeCode has x trade code for userID's LWA tokens, remembering region
// for the link, and returns within Deadline whatever LWA does, or by ctx's
// deadline when that comes first: callers start Deadline themselves before
// they verify the user's token, and the exchange gets what is left. It is the
// last step of every hand-over: Authorize's, and that of a smart-home skill's
// AcceptGrant directive (internal/smarthome).
//
// It returns the errors of x.Exchange, wrapped with the user, except that an
// error without a code (such as context.DeadlineExceeded) after ctx ended or
// Deadline passed is an EUNAVAILABLE error: LWA did not answer in time.
func ExchangeCode(ctx context.Context, x Exchanger, userID string, code tokens.Secret, region string) error {
	ctx, cancel := context.WithTimeout(ctx, Deadline)
	defer cancel()
	if _, err := x.Exchange(ctx, userID, code, region); err != nil {
		if ctx.Err() != nil && tokens.ErrorCode(err) == tokens.EINTERNAL {
			return fmt.Errorf("hand-over of user %q: %w", userID, tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon did not answer in time"))
		}
		return fmt.Errorf("hand-over of user %q: %w", userID, err)
	}
	return nil
}
