package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// RunSkills checks the views of one storage by skill: open returns, for a new
// empty storage, the function that gives the storage's view of a skill
// (skill ids as the skills file allows them: [a-z0-9-]{1,32}). The view of
// tokens.DefaultSkillID is the storage as it was before skills existed. A
// view names its skill in every link it returns and refuses a link of
// another skill; links, code claims, leases and link counts of different
// skills are apart, so that one user may be linked in several skills; the
// views of one skill, taken twice, are the same data.
func RunSkills(t *testing.T, open func(t *testing.T) func(skillID string) tokens.Store) {
	t.Helper()
	t.Run("NamesItsSkill", func(t *testing.T) {
		view := open(t)
		for _, skill := range []string{tokens.DefaultSkillID, "home", "a-1"} {
			s := view(skill)
			MustPut(t, s, NewLink("user-1"))
			if got := MustGet(t, s, "user-1").SkillID; got != skill {
				t.Errorf("view %q: GetLink SkillID = %q, want %q", skill, got, skill)
			}
			page, err := s.ListLinks(t.Context(), "", 0)
			if err != nil {
				t.Fatalf("view %q: ListLinks error = %v", skill, err)
			}
			if len(page.Links) != 1 || page.Links[0].SkillID != skill {
				t.Errorf("view %q: ListLinks = %+v, want one link of skill %q", skill, page.Links, skill)
			}
		}
	})

	t.Run("RefusesOtherSkill", func(t *testing.T) {
		s := open(t)("home")
		l := NewLink("user-1")
		l.SkillID = "baby"
		if err := s.PutLink(t.Context(), l); tokens.ErrorCode(err) != tokens.EINVALID {
			t.Errorf("PutLink(link of skill baby) in view home: error = %v, want EINVALID", err)
		}
		if l.Version != 0 {
			t.Errorf("refused PutLink set Version = %d, want 0", l.Version)
		}
		assertNotFound(t, s, "user-1")
		l.SkillID = "home"
		MustPut(t, s, l)
		assertLink(t, MustGet(t, s, "user-1"), l)
	})

	t.Run("LinksApart", func(t *testing.T) {
		view := open(t)
		def, home, baby := view(tokens.DefaultSkillID), view("home"), view("baby")
		a, b := NewLink("user-1"), NewLink("user-1")
		b.Region, b.Tokens.Ciphertext = "FE", []byte("home's sealed bytes")
		MustPut(t, def, a)
		MustPut(t, home, b)
		assertLink(t, MustGet(t, def, "user-1"), a)
		assertLink(t, MustGet(t, home, "user-1"), b)
		assertNotFound(t, baby, "user-1")

		// Versions are each link's own: writing one skill's link does not
		// conflict with the other's.
		b.State = tokens.StateRelinkRequired
		MustPut(t, home, b)
		a.Region = "NA"
		MustPut(t, def, a)

		if err := home.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteLink(home) error = %v", err)
		}
		assertNotFound(t, home, "user-1")
		assertLink(t, MustGet(t, def, "user-1"), a)
		if err := baby.DeleteLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("DeleteLink(baby, user-1) error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("SameViewTwice", func(t *testing.T) {
		view := open(t)
		l := NewLink("user-1")
		MustPut(t, view("home"), l)
		assertLink(t, MustGet(t, view("home"), "user-1"), l)
		def := NewLink("user-2")
		MustPut(t, view(tokens.DefaultSkillID), def)
		assertLink(t, MustGet(t, view(tokens.DefaultSkillID), "user-2"), def)
	})

	t.Run("ListApart", func(t *testing.T) {
		view := open(t)
		want := map[string][]string{
			tokens.DefaultSkillID: {"a", "c", "e"},
			"home":                {"b", "c", "d"},
			"baby":                {"a"},
		}
		for skill, users := range want {
			for _, u := range users {
				MustPut(t, view(skill), NewLink(u))
			}
		}
		for skill, users := range want {
			var got []string
			cursor := ""
			for {
				page, err := view(skill).ListLinks(t.Context(), cursor, 2)
				if err != nil {
					t.Fatalf("ListLinks(%s) error = %v", skill, err)
				}
				for _, l := range page.Links {
					got = append(got, l.UserID)
				}
				if page.Next == "" {
					break
				}
				cursor = page.Next
			}
			if diff := cmp.Diff(users, got); diff != "" {
				t.Errorf("ListLinks of skill %s (-want +got):\n%s", skill, diff)
			}
		}
	})

	t.Run("ClaimsApart", func(t *testing.T) {
		view := open(t)
		expires := time.Now().Add(time.Hour)
		for skill, user := range map[string]string{tokens.DefaultSkillID: "user-a", "home": "user-b", "baby": "user-c"} {
			owner, err := view(skill).ClaimCode(t.Context(), "hash-1", user, expires)
			if err != nil {
				t.Fatalf("ClaimCode(%s) error = %v", skill, err)
			}
			if owner != user {
				t.Errorf("ClaimCode(%s, hash-1, %s) owner = %q: another skill's claim of the code is not this skill's", skill, user, owner)
			}
		}
		if owner, err := view("home").ClaimCode(t.Context(), "hash-1", "user-z", expires); err != nil || owner != "user-b" {
			t.Errorf("second ClaimCode(home) = %q, %v; want user-b, nil", owner, err)
		}
	})

	t.Run("LeasesApart", func(t *testing.T) {
		view := open(t)
		def, ok1 := view(tokens.DefaultSkillID).(tokens.Leaser)
		home, ok2 := view("home").(tokens.Leaser)
		if !ok1 || !ok2 {
			t.Skip("the store is not a tokens.Leaser")
		}
		now := time.Now()
		for name, l := range map[string]tokens.Leaser{"default": def, "home": home} {
			held, err := l.AcquireLease(t.Context(), "user-1", "owner-"+name, now, now.Add(time.Minute))
			if err != nil || !held {
				t.Errorf("AcquireLease(%s, user-1) = %v, %v; want true, nil: another skill's lease is not this skill's", name, held, err)
			}
		}
		if held, err := home.AcquireLease(t.Context(), "user-1", "owner-default", now, now.Add(time.Minute)); err != nil || held {
			t.Errorf("AcquireLease(home, user-1, other owner) = %v, %v; want false, nil", held, err)
		}
	})

	t.Run("CountsApart", func(t *testing.T) {
		view := open(t)
		def, ok1 := view(tokens.DefaultSkillID).(tokens.LinkCounter)
		home, ok2 := view("home").(tokens.LinkCounter)
		if !ok1 || !ok2 {
			t.Skip("the store is not a tokens.LinkCounter")
		}
		MustPut(t, view(tokens.DefaultSkillID), NewLink("user-1"))
		r := NewLink("user-1")
		r.State = tokens.StateRelinkRequired
		MustPut(t, view("home"), r)
		MustPut(t, view("home"), NewLink("user-2"))
		assertLinkCounts(t, def, map[tokens.State]int{tokens.StateLinked: 1})
		assertLinkCounts(t, home, map[tokens.State]int{tokens.StateLinked: 1, tokens.StateRelinkRequired: 1})
	})
}
