package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/skills"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Secrets of the skills file's skills, which must never appear in an error.
const (
	babySecret = "baby-lwa-secret-value-5678"
	homeSecret = "home-lwa-secret-value-9012"
)

// skillsFile writes a skills file of two skills, baby (its secret in the
// environment) and home (its secret in a file), and returns its path.
func skillsFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "home-secret")
	if err := os.WriteFile(secretPath, []byte(homeSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return writeSkills(t, dir, `skills:
  - id: baby
    lwa_client_id: amzn1.application-oa2-client.baby
    lwa_client_secret: env:BABY_LWA_SECRET
    alexa_client_ids: [alexa-baby]
    region: NA
  - id: home
    lwa_client_id: amzn1.application-oa2-client.home
    lwa_client_secret: file:`+secretPath+`
    alexa_client_ids: [alexa-home-na, alexa-home-eu]
    region: EU
`)
}

// writeSkills writes content as skills.yaml in dir and returns its path.
func writeSkills(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, "skills.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// skillsEnv is validEnv with the skills file at path instead of the
// single-skill settings.
func skillsEnv(path string) map[string]string {
	env := validEnv()
	for _, k := range []string{"BROKER_LWA_CLIENT_ID", "BROKER_LWA_CLIENT_SECRET", "BROKER_ALEXA_CLIENT_IDS", "BROKER_ALEXA_REGION"} {
		delete(env, k)
	}
	env["BROKER_SKILLS_FILE"] = path
	env["BABY_LWA_SECRET"] = babySecret
	return env
}

// TestParse_SingleSkill: without a skills file, the single-skill settings make
// one skill named default.
func TestParse_SingleSkill(t *testing.T) {
	env := validEnv()
	env["BROKER_ALEXA_REGION"] = "EU"
	c, err := config.Parse(nil, getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	want := []skills.Skill{{
		ID:              skills.Default,
		LWAClientID:     "amzn1.application-oa2-client.test",
		LWAClientSecret: clientSecret,
		AlexaClientIDs:  []string{"alexa-skill-client", "other"},
		Region:          "EU",
	}}
	if diff := cmp.Diff(want, c.Skills); diff != "" {
		t.Errorf("Skills (-want +got):\n%s", diff)
	}
	if c.SkillsFile != "" {
		t.Errorf("SkillsFile = %q, want unset", c.SkillsFile)
	}
}

// TestParse_SkillsFile: with a skills file, Skills are the file's, and the
// single-skill fields stay empty; the flag names the file as the variable does.
func TestParse_SkillsFile(t *testing.T) {
	path := skillsFile(t)
	want := []skills.Skill{
		{ID: "baby", LWAClientID: "amzn1.application-oa2-client.baby", LWAClientSecret: babySecret, AlexaClientIDs: []string{"alexa-baby"}, Region: "NA"},
		{ID: "home", LWAClientID: "amzn1.application-oa2-client.home", LWAClientSecret: homeSecret, AlexaClientIDs: []string{"alexa-home-na", "alexa-home-eu"}, Region: "EU"},
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"Environment", skillsEnv(path), nil},
		{"Flag", func() map[string]string { e := skillsEnv(""); delete(e, "BROKER_SKILLS_FILE"); return e }(), []string{"--skills-file", path}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse(tc.args, getenv(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, c.Skills); diff != "" {
				t.Errorf("Skills (-want +got):\n%s", diff)
			}
			if c.SkillsFile != path {
				t.Errorf("SkillsFile = %q, want %q", c.SkillsFile, path)
			}
			if c.LWAClientID != "" || c.LWAClientSecret != "" || len(c.AlexaClientIDs) > 0 || c.AlexaRegion != "" {
				t.Errorf("single-skill fields set with a skills file: %q %q %q %q", c.LWAClientID, c.LWAClientSecret.Reveal(), c.AlexaClientIDs, c.AlexaRegion)
			}
		})
	}
}

// TestParse_SkillsFileInvalid: start-up refuses a skills file beside the
// single-skill settings, naming each one set, and reports the file's problems
// with every other setting's; no secret is in the error.
func TestParse_SkillsFileInvalid(t *testing.T) {
	good := skillsFile(t)
	literal := writeSkills(t, t.TempDir(), "skills:\n  - {id: a, lwa_client_id: c, lwa_client_secret: "+babySecret+", alexa_client_ids: [x]}\n")
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	for _, tc := range []struct {
		name string
		path string
		env  map[string]string // merged over skillsEnv(path); "" deletes
		want []string
	}{
		{"ClientIDBeside", good, map[string]string{"BROKER_LWA_CLIENT_ID": "amzn1.application-oa2-client.test"},
			[]string{"BROKER_LWA_CLIENT_ID: must stay unset with BROKER_SKILLS_FILE"}},
		{"SecretBeside", good, map[string]string{"BROKER_LWA_CLIENT_SECRET": clientSecret},
			[]string{"BROKER_LWA_CLIENT_SECRET: must stay unset with BROKER_SKILLS_FILE"}},
		{"AlexaClientIDsBeside", good, map[string]string{"BROKER_ALEXA_CLIENT_IDS": "alexa-skill-client"},
			[]string{"BROKER_ALEXA_CLIENT_IDS: must stay unset with BROKER_SKILLS_FILE"}},
		{"RegionBeside", good, map[string]string{"BROKER_ALEXA_REGION": "EU"},
			[]string{"BROKER_ALEXA_REGION: must stay unset with BROKER_SKILLS_FILE"}},
		{"AllBeside", good, map[string]string{"BROKER_LWA_CLIENT_ID": "x", "BROKER_LWA_CLIENT_SECRET": clientSecret, "BROKER_ALEXA_CLIENT_IDS": "y", "BROKER_ALEXA_REGION": "NA"},
			[]string{"BROKER_LWA_CLIENT_ID: must stay", "BROKER_LWA_CLIENT_SECRET: must stay", "BROKER_ALEXA_CLIENT_IDS: must stay", "BROKER_ALEXA_REGION: must stay"}},
		{"MissingFile", missing, nil, []string{"BROKER_SKILLS_FILE: " + missing + ": cannot read the file"}},
		{"EnvSecretUnset", good, map[string]string{"BABY_LWA_SECRET": ""},
			[]string{`BROKER_SKILLS_FILE: ` + good + `: skill 1 ("baby"): lwa_client_secret: env:BABY_LWA_SECRET`}},
		{"LiteralSecret", literal, nil, []string{`skill 1 ("a"): lwa_client_secret: a literal secret is refused`}},
		{"FileAndOtherProblems", missing, map[string]string{"BROKER_JWT_ISSUER": "", "BROKER_LWA_CLIENT_ID": "x"},
			[]string{"BROKER_SKILLS_FILE: " + missing, "BROKER_JWT_ISSUER: required", "BROKER_LWA_CLIENT_ID: must stay unset"}},
		{"JWTClientsWithoutASkillsClient", good, map[string]string{"BROKER_JWT_CLIENTS": "companion,alexa-baby,alexa-home-na"},
			[]string{"BROKER_JWT_CLIENTS: must include Alexa's clients of every skill of BROKER_SKILLS_FILE", "missing alexa-home-eu"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := skillsEnv(tc.path)
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := config.Parse(nil, getenv(env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			msg := err.Error()
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			for _, secret := range []string{clientSecret, babySecret, homeSecret, hsSecret} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret", msg)
				}
			}
		})
	}
}

// TestParse_JWTClientsOfEverySkill: BROKER_JWT_CLIENTS is accepted when it
// holds the Alexa client ids of every skill of the file.
func TestParse_JWTClientsOfEverySkill(t *testing.T) {
	env := skillsEnv(skillsFile(t))
	env["BROKER_JWT_CLIENTS"] = "companion,alexa-baby,alexa-home-na,alexa-home-eu"
	c, err := config.Parse(nil, getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Skills[0].LWAClientSecret; got != tokens.Secret(babySecret) {
		t.Errorf("baby's secret = %q", got)
	}
}
