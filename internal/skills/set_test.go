package skills_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/skills"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func skill(id string, clients ...string) skills.Skill {
	return skills.Skill{ID: id, LWAClientID: "lwa-" + id, LWAClientSecret: "secret-" + tokens.Secret(id), AlexaClientIDs: clients}
}

func newSet(t *testing.T, list ...skills.Skill) *skills.Set {
	t.Helper()
	s, err := skills.NewSet(list)
	if err != nil {
		t.Fatalf("NewSet: %v", err)
	}
	return s
}

func TestNewSet_Invalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []skills.Skill
		want string
	}{
		{"Empty", nil, "no skill"},
		{"BadID", []skills.Skill{skill("Baby", "a")}, `id "Baby"`},
		{"EmptyID", []skills.Skill{skill("", "a")}, `id ""`},
		{"DuplicateID", []skills.Skill{skill("baby", "a"), skill("baby", "b")}, `"baby" is given twice`},
		{"ClientInTwoSkills", []skills.Skill{skill("baby", "a"), skill("home", "b", "a")}, `"a" belongs to the skills "baby" and "home"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := skills.NewSet(tc.list)
			if err == nil {
				t.Fatal("NewSet succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestSet_Lookups(t *testing.T) {
	s := newSet(t, skill("baby", "alexa-baby"), skill("home", "alexa-home-na", "alexa-home-eu"))

	t.Run("Skill", func(t *testing.T) {
		if sk, ok := s.Skill("home"); !ok || sk.LWAClientID != "lwa-home" {
			t.Errorf(`Skill("home") = %+v, %v`, sk, ok)
		}
		if _, ok := s.Skill("garden"); ok {
			t.Error(`Skill("garden") found a skill`)
		}
	})
	t.Run("ForClient", func(t *testing.T) {
		for client, want := range map[string]string{"alexa-baby": "baby", "alexa-home-eu": "home", "alexa-home-na": "home"} {
			if sk, ok := s.ForClient(client); !ok || sk.ID != want {
				t.Errorf("ForClient(%q) = %q, %v; want %q", client, sk.ID, ok, want)
			}
		}
		if _, ok := s.ForClient("baby"); ok {
			t.Error(`ForClient("baby") found a skill: a skill id is no client id`)
		}
	})
	t.Run("IDs", func(t *testing.T) {
		if got, want := s.IDs(), []string{"baby", "home"}; !slices.Equal(got, want) {
			t.Errorf("IDs() = %q, want %q", got, want)
		}
	})
	t.Run("AllClientIDs", func(t *testing.T) {
		if got, want := s.AllClientIDs(), []string{"alexa-baby", "alexa-home-na", "alexa-home-eu"}; !slices.Equal(got, want) {
			t.Errorf("AllClientIDs() = %q, want %q", got, want)
		}
	})
	t.Run("All", func(t *testing.T) {
		all := s.All()
		if len(all) != 2 || all[0].ID != "baby" || all[1].ID != "home" {
			t.Errorf("All() = %+v", all)
		}
	})
	t.Run("CopiesCannotChangeTheSet", func(t *testing.T) {
		sk, _ := s.Skill("home")
		sk.AlexaClientIDs[0] = "changed"
		s.All()[1].AlexaClientIDs[1] = "changed"
		if got, _ := s.Skill("home"); !slices.Equal(got.AlexaClientIDs, []string{"alexa-home-na", "alexa-home-eu"}) {
			t.Errorf("the set's skill changed: %q", got.AlexaClientIDs)
		}
	})
}

// TestNewSet_CopiesItsList: changing the list given to NewSet later does not
// change the set.
func TestNewSet_CopiesItsList(t *testing.T) {
	list := []skills.Skill{skill("baby", "alexa-baby")}
	s := newSet(t, list...)
	list[0].AlexaClientIDs[0] = "changed"
	if _, ok := s.ForClient("alexa-baby"); !ok {
		t.Error("the set lost its client id")
	}
	if sk, _ := s.Skill("baby"); sk.AlexaClientIDs[0] != "alexa-baby" {
		t.Errorf("AlexaClientIDs = %q", sk.AlexaClientIDs)
	}
}

// TestSet_Resolve: a call that names no skill means the only skill, else the
// default one; otherwise it, and a call naming an unknown skill, is EINVALID
// naming skill_id.
func TestSet_Resolve(t *testing.T) {
	one := newSet(t, skill("baby", "a"))
	withDefault := newSet(t, skill("baby", "a"), skill(skills.Default, "b"))
	several := newSet(t, skill("baby", "a"), skill("home", "b"))
	for _, tc := range []struct {
		name    string
		set     *skills.Set
		id      string
		want    string // the skill's id, or "" for an error
		wantMsg string
	}{
		{"OnlySkill", one, "", "baby", ""},
		{"OnlySkillByID", one, "baby", "baby", ""},
		{"OnlySkillUnknown", one, "home", "", `unknown skill_id "home"`},
		{"DefaultSkill", withDefault, "", skills.Default, ""},
		{"DefaultSetOther", withDefault, "baby", "baby", ""},
		{"DefaultByID", withDefault, "default", skills.Default, ""},
		{"SeveralNoID", several, "", "", "skill_id is required: several skills are configured"},
		{"SeveralByID", several, "home", "home", ""},
		{"SeveralUnknown", several, "garden", "", `unknown skill_id "garden"`},
		{"SeveralDefaultUnknown", several, "default", "", `unknown skill_id "default"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk, err := tc.set.Resolve(tc.id)
			if tc.want != "" {
				if err != nil || sk.ID != tc.want {
					t.Errorf("Resolve(%q) = %q, %v; want %q", tc.id, sk.ID, err, tc.want)
				}
				return
			}
			if got := tokens.ErrorCode(err); got != tokens.EINVALID {
				t.Fatalf("Resolve(%q) = %q, %v; want EINVALID", tc.id, sk.ID, err)
			}
			if got := tokens.ErrorMessage(err); got != tc.wantMsg {
				t.Errorf("message = %q, want %q", got, tc.wantMsg)
			}
		})
	}
}
