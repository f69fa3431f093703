package reports

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Tokens is what reports need of the token services of the skills
// (tokens.Services). Implementations are safe for concurrent use. Every method
// returns an EINVALID error for an unknown skill, and may return an
// EUNAVAILABLE error when the store or Login with Amazon cannot be reached:
// the Deliverer then tries the report again later, while any other error of
// Link, Token or Refresh fails it.
type Tokens interface {
	// Link returns the user's link in the skill, or tokens.ErrLinkNotFound
	// (wrapped).
	Link(ctx context.Context, skillID, userID string) (*tokens.Link, error)
	// Token returns an access token of the user in the skill that is fresh,
	// refreshing it first when needed. It returns tokens.ErrLinkNotFound
	// (wrapped) when the user has no link, and an ERELINK error when the user
	// must link the skill again.
	Token(ctx context.Context, skillID, userID string) (tokens.Token, error)
	// Refresh refreshes the user's tokens in the skill now, even when they
	// are fresh. Errors are as for Token.
	Refresh(ctx context.Context, skillID, userID string) (*tokens.Link, error)
	// RequireRelink marks the user's link in the skill as needing a new
	// hand-over, so that Token and Refresh answer ERELINK until then. It
	// returns tokens.ErrLinkNotFound (wrapped) when the user has no link.
	RequireRelink(ctx context.Context, skillID, userID string) error
}

// Observer is told what happens to deliveries of each kind, for metrics. Its
// methods must be quick and safe for concurrent use.
type Observer interface {
	// Accepted is called when Submit or SubmitAlexaEvent stored a new
	// delivery.
	Accepted(kind Kind)
	// Delivered is called when a delivery was accepted by Alexa,
	// sinceSubmitted after the broker accepted it.
	Delivered(kind Kind, sinceSubmitted time.Duration)
	// Failed is called when a delivery failed for good.
	Failed(kind Kind)
	// Retried is called when an attempt failed and will be retried.
	Retried(kind Kind)
	// Superseded is called for each older report made moot by the delivery
	// of a newer one.
	Superseded(kind Kind)
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) Accepted(Kind)                 {}
func (nopObserver) Delivered(Kind, time.Duration) {}
func (nopObserver) Failed(Kind)                   {}
func (nopObserver) Retried(Kind)                  {}
func (nopObserver) Superseded(Kind)               {}

// Service accepts reports and answers for them; a Deliverer sends them. It is
// safe for concurrent use once its fields are set.
type Service struct {
	store  Store
	tokens Tokens
	// Now returns the current time; tests set it.
	Now func() time.Time
	// Observer is told what happens to reports, here and in the Deliverer;
	// nil observes nothing.
	Observer Observer
	// Logger receives what happens to reports; it must not be nil. NewService
	// sets one that discards.
	Logger *slog.Logger
	// Notify decides which of the delivery events recorded here and in the
	// Deliverer are also sent to the webhook (Event.Notify); nil sends none.
	Notify tokens.NotifySet
	// EventObserver is told of every delivery event stored with a report's
	// end state; nil observes nothing.
	EventObserver tokens.EventObserver
	// wake, when set, is signalled after each new report so delivery starts at once.
	wake chan<- struct{}
}

// NewService returns a Service over the outbox and the token service.
func NewService(store Store, tokens Tokens) *Service {
	return &Service{store: store, tokens: tokens, Now: time.Now, Observer: nopObserver{}, Logger: slog.New(slog.DiscardHandler)}
}

// observer returns s.Observer, or one that observes nothing.
func (s *Service) observer() Observer {
	if s.Observer == nil {
		return nopObserver{}
	}
	return s.Observer
}

// Submit checks the report of userID's profiles in skillID ("" is the default
// skill) under messageID and stores it as PENDING before returning, so that it
// is delivered even if the process stops next. An empty messageID gets a new UUID. Submitting a message id again
// returns the report stored first, as it stands now, and does not deliver it
// twice.
//
// It returns an EINVALID error naming the field the Alexa Health API would
// refuse (or a message id already used for another user), tokens.ErrLinkNotFound
// when the user has no link, and an EUNAVAILABLE error when the store cannot be
// reached.
func (s *Service) Submit(ctx context.Context, skillID, userID, messageID string, profiles []Profile) (*Report, error) {
	if messageID == "" {
		messageID = uuid.NewString()
	}
	now := s.Now()
	r := &Report{
		MessageID: messageID, UserID: userID, SkillID: skillID, Kind: KindProfileReport, Profiles: slices.Clone(profiles),
		State: StatePending, SubmittedAt: now, NextAttemptAt: now,
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return s.keep(ctx, r)
}

// keep stores r, new and checked, in the outbox unless its message id is
// taken: see Submit.
func (s *Service) keep(ctx context.Context, r *Report) (*Report, error) {
	if _, err := s.tokens.Link(ctx, r.SkillID, r.UserID); err != nil {
		return nil, err
	}
	// The default skill and the profile-report kind are stored as "", as
	// reports were before skills and kinds existed: their records stay as
	// they were.
	if r.SkillID == tokens.DefaultSkillID {
		r.SkillID = ""
	}
	if r.Kind == KindProfileReport {
		r.Kind = ""
	}
	existing, created, err := s.store.CreateReport(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("store report: %w", err)
	}
	if !created {
		if existing.UserID != r.UserID || existing.Lane() != r.Lane() {
			field := "message_id"
			if r.Kind == KindAlexaEvent {
				field = "event.header.messageId"
			}
			return nil, tokens.Errorf(tokens.EINVALID, "%s: already used for another user, skill or kind", field)
		}
		return existing, nil
	}
	s.observer().Accepted(r.DeliveryKind())
	s.Logger.InfoContext(ctx, "delivery accepted", "message_id", r.MessageID, "user_id", r.UserID, "skill_id", r.SkillID, "kind", string(r.Kind))
	if s.wake != nil {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return r, nil
}

// SubmitAlexaEvent checks message, an Alexa event of userID in skillID ("" is
// the default skill) as CheckAlexaEvent does, and stores it as a PENDING
// KindAlexaEvent delivery under its event.header.messageId before returning,
// so that it is delivered even if the process stops next. Submitting a
// message id again returns the delivery stored first, as it stands now, and
// does not deliver it twice.
//
// It returns an EINVALID error naming the failing field (or a message id
// already used for another user, skill or kind), tokens.ErrLinkNotFound when
// the user has no link in the skill, and an EUNAVAILABLE error when the store
// cannot be reached.
func (s *Service) SubmitAlexaEvent(ctx context.Context, skillID, userID string, message []byte) (*Report, error) {
	if err := CheckAlexaEvent(message); err != nil {
		return nil, err
	}
	now := s.Now()
	r := &Report{
		MessageID: AlexaEventMessageID(message), UserID: userID, SkillID: skillID, Kind: KindAlexaEvent,
		Message: slices.Clone(message), State: StatePending, SubmittedAt: now, NextAttemptAt: now,
	}
	return s.keep(ctx, r)
}

// Report returns the report with messageID. It returns ErrReportNotFound
// (wrapped) when there is none, and an EUNAVAILABLE error when the store cannot
// be reached.
func (s *Service) Report(ctx context.Context, messageID string) (*Report, error) {
	return s.store.GetReport(ctx, messageID)
}
