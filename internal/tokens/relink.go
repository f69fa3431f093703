package tokens

import "context"

// errRelink is the answer for a link in StateRelinkRequired.
var errRelink = &Error{Code: ERELINK, Message: "the user must link the skill again"}

// RequireRelink marks userID's link RELINK_REQUIRED, as when Alexa answers that
// the skill was disabled or its permission withdrawn: no LWA call is made for
// the user until Alexa hands over a new code. The change is recorded as a
// link.relink_required event of ActorBroker with the reason alexa_forbidden.
// A link already marked stays as it is, and records nothing. It returns ErrLinkNotFound when the user has no link, and an EUNAVAILABLE
// error when the store cannot be reached or the link keeps changing.
func (s *Service) RequireRelink(ctx context.Context, userID string) error {
	l, err := s.write(ctx, userID, func(cur *Link) (*Link, []Event, error) {
		if cur == nil {
			return nil, nil, ErrLinkNotFound
		}
		if cur.State == StateRelinkRequired {
			return nil, nil, nil
		}
		next := *cur
		next.State = StateRelinkRequired
		e := s.event(EventRelinkRequired, userID, ActorBroker, map[string]any{"reason": ReasonAlexaForbidden})
		return &next, []Event{e}, nil
	})
	if err != nil {
		return err
	}
	s.usage.forget(l.UserID)
	return nil
}
