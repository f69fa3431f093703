package skills

import (
	"errors"
	"fmt"
	"slices"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Set is the skills one broker serves, found by id or by Alexa client id. It
// is built once, at start-up, and safe for concurrent use: it never changes.
type Set struct {
	list     []Skill
	byID     map[string]int // skill id → index in list
	byClient map[string]int // Alexa client id → index in list
}

// NewSet returns the Set of list, kept in list's order. It returns an error
// when list is empty, when an id is not 1 to 32 lowercase letters, digits or
// '-', when two skills have the same id, or when an Alexa client id belongs to
// two skills. (Skills from Load already hold to these rules.)
func NewSet(list []Skill) (*Set, error) {
	if len(list) == 0 {
		return nil, errors.New("skills: no skill is configured")
	}
	s := &Set{
		list:     make([]Skill, len(list)),
		byID:     make(map[string]int, len(list)),
		byClient: map[string]int{},
	}
	for i, sk := range list {
		if !validID(sk.ID) {
			return nil, fmt.Errorf("skills: skill %d: id %q must be 1 to 32 lowercase letters, digits or '-'", i+1, sk.ID)
		}
		if _, dup := s.byID[sk.ID]; dup {
			return nil, fmt.Errorf("skills: skill id %q is given twice", sk.ID)
		}
		s.byID[sk.ID] = i
		for _, c := range sk.AlexaClientIDs {
			if owner, taken := s.byClient[c]; taken && owner != i {
				return nil, fmt.Errorf("skills: Alexa client id %q belongs to the skills %q and %q", c, list[owner].ID, sk.ID)
			}
			s.byClient[c] = i
		}
		sk.AlexaClientIDs = slices.Clone(sk.AlexaClientIDs)
		s.list[i] = sk
	}
	return s, nil
}

// Skill returns the skill whose id is id, and false when there is none.
func (s *Set) Skill(id string) (Skill, bool) {
	i, ok := s.byID[id]
	if !ok {
		return Skill{}, false
	}
	return s.at(i), true
}

// ForClient returns the skill that alexaClientID, a client id the partner
// issued to Alexa, belongs to, and false when it belongs to none.
func (s *Set) ForClient(alexaClientID string) (Skill, bool) {
	i, ok := s.byClient[alexaClientID]
	if !ok {
		return Skill{}, false
	}
	return s.at(i), true
}

// Resolve returns the skill that a call's skill_id means. An empty id means
// the only skill when one is configured, else the skill whose id is Default
// when there is one. It returns EINVALID, naming skill_id, when id is empty
// and neither rule finds a skill, and when no skill has the id.
func (s *Set) Resolve(id string) (Skill, error) {
	if id == "" {
		if len(s.list) == 1 {
			return s.at(0), nil
		}
		if sk, ok := s.Skill(Default); ok {
			return sk, nil
		}
		return Skill{}, tokens.Errorf(tokens.EINVALID, "skill_id is required: several skills are configured")
	}
	sk, ok := s.Skill(id)
	if !ok {
		return Skill{}, tokens.Errorf(tokens.EINVALID, "unknown skill_id %q", id)
	}
	return sk, nil
}

// IDs returns the id of every skill, in the order they were configured.
func (s *Set) IDs() []string {
	ids := make([]string, len(s.list))
	for i, sk := range s.list {
		ids[i] = sk.ID
	}
	return ids
}

// All returns every skill, in the order they were configured.
func (s *Set) All() []Skill {
	all := make([]Skill, len(s.list))
	for i := range s.list {
		all[i] = s.at(i)
	}
	return all
}

// AllClientIDs returns the Alexa client ids of every skill, skill after skill
// in the order they were configured, each once.
func (s *Set) AllClientIDs() []string {
	var ids []string
	for _, sk := range s.list {
		for _, c := range sk.AlexaClientIDs {
			if !slices.Contains(ids, c) {
				ids = append(ids, c)
			}
		}
	}
	return ids
}

// at returns the skill at index i, with its own copy of AlexaClientIDs so that
// a caller cannot change the Set.
func (s *Set) at(i int) Skill {
	sk := s.list[i]
	sk.AlexaClientIDs = slices.Clone(sk.AlexaClientIDs)
	return sk
}
