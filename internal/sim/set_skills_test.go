package sim_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/skills"
)

// twoSkills are the skills of the tests below: one with every field given,
// one with the defaults.
var twoSkills = []sim.Skill{
	{ID: "baby", AlexaClientID: "alexa-baby-client", Region: "NA", LWAClientID: "amzn1.application-oa2-client.baby"},
	{ID: "home"},
}

func TestSet_Skills(t *testing.T) {
	s := startSet(t, sim.SetOptions{Skills: twoSkills})
	want := []sim.Skill{
		twoSkills[0],
		{ID: "home", AlexaClientID: "alexa-home", LWAClientID: sim.DefaultLWAClientID + ".home"},
	}
	if diff := cmp.Diff(want, s.Skills()); diff != "" {
		t.Errorf("Skills (-want +got):\n%s", diff)
	}
	if got, ok := s.Skill("home"); !ok || got != want[1] {
		t.Errorf("Skill(home) = %+v, %v; want %+v, true", got, ok, want[1])
	}
	if _, ok := s.Skill("nope"); ok {
		t.Error("Skill(nope) found a skill")
	}
	s.Skills()[0].ID = "changed"
	if s.Skills()[0].ID != "baby" {
		t.Error("Skills returned a shared slice")
	}
	if _, err := s.IssueCodeForSkill("parent", "nope"); err == nil {
		t.Error("IssueCodeForSkill of an unknown skill = nil error")
	}
	// The single skill of BrokerEnv stands beside the skills.
	mustOK(t, exchangeAs(t, s.LWA, s.LWA.ClientID(), s.LWA.ClientSecret(), s.LWA.IssueCodeFor("parent")))
}

func TestSet_SkillsEnv(t *testing.T) {
	s := startSet(t, sim.SetOptions{Skills: twoSkills})
	dir := t.TempDir()
	env, err := s.SkillsEnv(dir)
	if err != nil {
		t.Fatalf("SkillsEnv: %v", err)
	}

	t.Run("Settings", func(t *testing.T) {
		want := s.BrokerEnv()
		for _, k := range []string{"BROKER_LWA_CLIENT_ID", "BROKER_LWA_CLIENT_SECRET", "BROKER_ALEXA_CLIENT_IDS", "BROKER_ALEXA_REGION"} {
			delete(want, k)
		}
		want["BROKER_SKILLS_FILE"] = filepath.Join(dir, "skills.yaml")
		if diff := cmp.Diff(want, env); diff != "" {
			t.Errorf("SkillsEnv (-want +got):\n%s", diff)
		}
		env2, err := s.SkillsEnv(dir)
		if err != nil {
			t.Fatalf("second SkillsEnv: %v", err)
		}
		env2["BROKER_SKILLS_FILE"] = "changed"
		if env["BROKER_SKILLS_FILE"] == "changed" {
			t.Error("SkillsEnv returned a shared map")
		}
	})

	// Load reads the file as the broker does, with an empty environment: the
	// file alone describes the skills.
	list, err := skills.Load(env["BROKER_SKILLS_FILE"], func(string) string { return "" })
	if err != nil {
		t.Fatalf("skills.Load of the written file: %v", err)
	}

	t.Run("Load", func(t *testing.T) {
		want := []skills.Skill{
			{ID: "baby", LWAClientID: "amzn1.application-oa2-client.baby", AlexaClientIDs: []string{"alexa-baby-client"}, Region: "NA"},
			{ID: "home", LWAClientID: sim.DefaultLWAClientID + ".home", AlexaClientIDs: []string{"alexa-home"}},
		}
		if diff := cmp.Diff(want, list, cmpopts.IgnoreFields(skills.Skill{}, "LWAClientSecret")); diff != "" {
			t.Errorf("skills.Load (-want +got):\n%s", diff)
		}
	})
	t.Run("SecretFiles", func(t *testing.T) {
		data, err := os.ReadFile(env["BROKER_SKILLS_FILE"])
		if err != nil {
			t.Fatal(err)
		}
		for _, sk := range list {
			path := filepath.Join(dir, "lwa-secret-"+sk.ID)
			if !strings.Contains(string(data), "file:"+path) {
				t.Errorf("the skills file does not refer to %s:\n%s", path, data)
			}
			if strings.Contains(string(data), sk.LWAClientSecret.Reveal()) {
				t.Errorf("the skills file holds skill %s's secret", sk.ID)
			}
		}
		for _, name := range []string{"skills.yaml", "lwa-secret-baby", "lwa-secret-home"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("%s has mode %v, want 0600", name, got)
			}
		}
	})
	t.Run("CredentialsPerSkill", func(t *testing.T) {
		// Each skill's credentials, as the broker loads them, exchange that
		// skill's codes and only those.
		for i, sk := range list {
			other := list[1-i]
			secret := sk.LWAClientSecret.Reveal()
			code, err := s.IssueCodeForSkill("parent", sk.ID)
			if err != nil {
				t.Fatal(err)
			}
			assertOAuthError(t, exchangeAs(t, s.LWA, other.LWAClientID, other.LWAClientSecret.Reveal(), code), http.StatusBadRequest, "invalid_grant")
			assertOAuthError(t, exchangeAs(t, s.LWA, s.LWA.ClientID(), s.LWA.ClientSecret(), code), http.StatusBadRequest, "invalid_grant")
			access, _ := mustOK(t, exchangeAs(t, s.LWA, sk.LWAClientID, secret, code))
			if client, ok := s.LWA.AccessTokenClient(access); !ok || client != sk.LWAClientID {
				t.Errorf("skill %s: AccessTokenClient = %q, %v; want %q", sk.ID, client, ok, sk.LWAClientID)
			}
			if secret == s.LWA.ClientSecret() || secret == other.LWAClientSecret.Reveal() {
				t.Errorf("skill %s shares another client's secret", sk.ID)
			}
		}
	})
	t.Run("UserTokenPerSkill", func(t *testing.T) {
		// The authorization server mints hand-over tokens whose client is a
		// skill's Alexa client.
		sk, _ := s.Skill("home")
		raw := s.Auth.UserToken("parent", sk.AlexaClientID, time.Minute)
		var claims sim.AccessClaims
		if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err != nil {
			t.Fatal(err)
		}
		if got, want := claims.ClientID, "alexa-home"; got != want {
			t.Errorf("client_id = %q, want %q", got, want)
		}
	})
	t.Run("ReplacesFiles", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "lwa-secret-home")
		if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SkillsEnv(dir); err != nil {
			t.Fatalf("SkillsEnv: %v", err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("a replaced secret file has mode %v, want 0600", got)
		}
	})
	t.Run("RelativeDir", func(t *testing.T) {
		t.Chdir(t.TempDir())
		if err := os.Mkdir("sub", 0o700); err != nil {
			t.Fatal(err)
		}
		env, err := s.SkillsEnv("sub")
		if err != nil {
			t.Fatalf("SkillsEnv: %v", err)
		}
		if p := env["BROKER_SKILLS_FILE"]; !filepath.IsAbs(p) {
			t.Errorf("BROKER_SKILLS_FILE = %q, want an absolute path", p)
		}
	})
	t.Run("MissingDir", func(t *testing.T) {
		if _, err := s.SkillsEnv(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Error("SkillsEnv into a missing folder = nil error")
		}
	})
}

func TestSet_SkillsEnv_NoSkills(t *testing.T) {
	s := startSet(t, sim.SetOptions{})
	if _, err := s.SkillsEnv(t.TempDir()); err == nil {
		t.Error("SkillsEnv without skills = nil error")
	}
	if got := s.Skills(); len(got) != 0 {
		t.Errorf("Skills = %v, want none", got)
	}
}

// TestSet_SkillsEnv_DefaultClient checks that a skill may be the single skill
// of BrokerEnv, as when a broker gains a skills file: it keeps that skill's
// LWA client and its credentials.
func TestSet_SkillsEnv_DefaultClient(t *testing.T) {
	s := startSet(t, sim.SetOptions{Skills: []sim.Skill{
		{ID: "default", AlexaClientID: sim.DefaultAlexaClientID, LWAClientID: sim.DefaultLWAClientID},
		{ID: "home"},
	}})
	env, err := s.SkillsEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	list, err := skills.Load(env["BROKER_SKILLS_FILE"], func(string) string { return "" })
	if err != nil {
		t.Fatalf("skills.Load: %v", err)
	}
	if got, want := list[0].LWAClientSecret.Reveal(), s.LWA.ClientSecret(); got != want {
		t.Errorf("the default skill's secret is not the default client's")
	}
	code, err := s.IssueCodeForSkill("parent", "default")
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, exchangeAs(t, s.LWA, s.LWA.ClientID(), s.LWA.ClientSecret(), code))
}

func TestStartSet_InvalidSkills(t *testing.T) {
	for _, tc := range []struct {
		name   string
		skills []sim.Skill
		want   []string
	}{
		{"NoID", []sim.Skill{{}}, []string{"skill 1", "id"}},
		{"BadID", []sim.Skill{{ID: "Baby"}}, []string{`skill 1 ("Baby")`, "id"}},
		{"LongID", []sim.Skill{{ID: strings.Repeat("a", 33)}}, []string{"skill 1", "id"}},
		{"DuplicateID", []sim.Skill{{ID: "baby"}, {ID: "baby", AlexaClientID: "a", LWAClientID: "l"}}, []string{`skill 2 ("baby")`, "id is taken"}},
		{"DuplicateAlexaClient", []sim.Skill{{ID: "a", AlexaClientID: "x"}, {ID: "b", AlexaClientID: "x"}}, []string{`skill 2 ("b")`, "Alexa client id is taken"}},
		{"DuplicateLWAClient", []sim.Skill{{ID: "a", LWAClientID: "x"}, {ID: "b", LWAClientID: "x"}}, []string{`skill 2 ("b")`, "LWA client id is taken"}},
		{"BadRegion", []sim.Skill{{ID: "a", Region: "na"}}, []string{`skill 1 ("a")`, "region"}},
		{"Several", []sim.Skill{{ID: "A"}, {ID: "b", Region: "US"}}, []string{"skill 1", "skill 2", "region"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sim.StartSet(t.Context(), sim.SetOptions{Skills: tc.skills})
			if err == nil {
				s.Close()
				t.Fatal("StartSet = nil error")
			}
			for _, w := range append(tc.want, "SetOptions.Skills") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("OptionsUntouched", func(t *testing.T) {
		in := []sim.Skill{{ID: "home"}}
		startSet(t, sim.SetOptions{Skills: in})
		if in[0] != (sim.Skill{ID: "home"}) {
			t.Errorf("StartSet changed the caller's skills: %+v", in[0])
		}
	})
}

func TestSet_AdminCodesForSkill(t *testing.T) {
	s := startSet(t, sim.SetOptions{Skills: twoSkills, User: "parent"})
	sk, _ := s.Skill("home")
	env, err := s.SkillsEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	list, err := skills.Load(env["BROKER_SKILLS_FILE"], func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	home := list[1]

	status, code := adminCall(t, s, "POST", "/codes?skill=home")
	if status != http.StatusOK || code == "" {
		t.Fatalf("POST /codes?skill=home = %d %q, want 200 and a code", status, code)
	}
	assertOAuthError(t, exchangeAs(t, s.LWA, s.LWA.ClientID(), s.LWA.ClientSecret(), code), http.StatusBadRequest, "invalid_grant")
	access, _ := mustOK(t, exchangeAs(t, s.LWA, sk.LWAClientID, home.LWAClientSecret.Reveal(), code))
	if user, ok := s.LWA.AccessTokenUser(access); !ok || user != "parent" {
		t.Errorf("the code's token belongs to %q (%v), want parent", user, ok)
	}

	status, code = adminCall(t, s, "POST", "/codes?skill=home&user=other")
	if status != http.StatusOK {
		t.Fatalf("POST /codes?skill=home&user=other = %d %q", status, code)
	}
	access, _ = mustOK(t, exchangeAs(t, s.LWA, sk.LWAClientID, home.LWAClientSecret.Reveal(), code))
	if user, _ := s.LWA.AccessTokenUser(access); user != "other" {
		t.Errorf("the code's token belongs to %q, want other", user)
	}

	if status, body := adminCall(t, s, "POST", "/codes?skill=nope"); status != http.StatusNotFound {
		t.Errorf("POST /codes?skill=nope = %d %q, want 404", status, body)
	}
}
