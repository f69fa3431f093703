package tokens

import (
	"context"
	"fmt"
)

// Services is the Services of a broker's skills, one per skill, by skill id.
// It answers for a skill and a user what a Service answers for a user. It is
// safe for concurrent use once made.
type Services struct {
	byID map[string]*Service
	ids  []string
}

// NewServices returns the Services of services, each under its SkillID, in the
// order given. It returns an EINVALID error when two have the same SkillID or
// one has none.
func NewServices(services ...*Service) (*Services, error) {
	ss := &Services{byID: make(map[string]*Service, len(services))}
	for _, s := range services {
		switch {
		case s.SkillID == "":
			return nil, Errorf(EINVALID, "a token service has no skill id")
		case ss.byID[s.SkillID] != nil:
			return nil, Errorf(EINVALID, "two token services of skill %q", s.SkillID)
		}
		ss.byID[s.SkillID] = s
		ss.ids = append(ss.ids, s.SkillID)
	}
	return ss, nil
}

// Skill returns the Service of skillID; "" is DefaultSkillID (the skill of
// what was stored before skills existed). It returns an EINVALID error naming
// skill_id when no Service has that skill. Calls naming a skill as the API
// does use Resolve.
func (ss *Services) Skill(skillID string) (*Service, error) {
	if skillID == "" {
		skillID = DefaultSkillID
	}
	s, ok := ss.byID[skillID]
	if !ok {
		return nil, Errorf(EINVALID, "unknown skill_id %q", skillID)
	}
	return s, nil
}

// Resolve returns the Service of a call's skill_id: the skill named, or, when
// skillID is "", the only skill when there is one, else the default skill
// when there is one. It returns an EINVALID error naming skill_id for an
// unknown skill, and for "" among several skills none of which is the default.
func (ss *Services) Resolve(skillID string) (*Service, error) {
	if skillID != "" {
		return ss.Skill(skillID)
	}
	if len(ss.ids) == 1 {
		return ss.byID[ss.ids[0]], nil
	}
	if s, ok := ss.byID[DefaultSkillID]; ok {
		return s, nil
	}
	return nil, Errorf(EINVALID, "skill_id is required: several skills are configured")
}

// All returns every Service, in the order NewServices was given them.
func (ss *Services) All() []*Service {
	all := make([]*Service, len(ss.ids))
	for i, id := range ss.ids {
		all[i] = ss.byID[id]
	}
	return all
}

// Link returns the link of userID in skillID (see Service.Link); an unknown
// skill is an EINVALID error.
func (ss *Services) Link(ctx context.Context, skillID, userID string) (*Link, error) {
	s, err := ss.Skill(skillID)
	if err != nil {
		return nil, err
	}
	return s.Link(ctx, userID)
}

// Token returns a fresh access token of userID in skillID (see Service.Token);
// an unknown skill is an EINVALID error.
func (ss *Services) Token(ctx context.Context, skillID, userID string) (Token, error) {
	s, err := ss.Skill(skillID)
	if err != nil {
		return Token{}, err
	}
	return s.Token(ctx, userID)
}

// Refresh refreshes the tokens of userID in skillID now (see Service.Refresh);
// an unknown skill is an EINVALID error.
func (ss *Services) Refresh(ctx context.Context, skillID, userID string) (*Link, error) {
	s, err := ss.Skill(skillID)
	if err != nil {
		return nil, err
	}
	return s.Refresh(ctx, userID)
}

// RequireRelink marks the link of userID in skillID as needing a new
// hand-over (see Service.RequireRelink); an unknown skill is an EINVALID
// error.
func (ss *Services) RequireRelink(ctx context.Context, skillID, userID string) error {
	s, err := ss.Skill(skillID)
	if err != nil {
		return err
	}
	return s.RequireRelink(ctx, userID)
}

// Close closes every Service (see Service.Close) and returns the first error.
func (ss *Services) Close(ctx context.Context) error {
	var first error
	for _, s := range ss.All() {
		if err := s.Close(ctx); err != nil && first == nil {
			first = fmt.Errorf("close token service of skill %q: %w", s.SkillID, err)
		}
	}
	return first
}
