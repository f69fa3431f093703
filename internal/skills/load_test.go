package skills_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/skills"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Secret values that must never appear in an error.
const (
	literalSecret = "zq7Wm3-literal-lwa-secret-0123"
	envSecret     = "env-lwa-secret-abcdef"
	fileSecret    = "file-lwa-secret-987654"
)

// secretFiles writes the secret files the cases refer to into dir: good holds
// fileSecret between white space, blank holds only white space.
func secretFiles(t *testing.T, dir string) {
	t.Helper()
	for name, content := range map[string]string{
		"good":  "\n  " + fileSecret + " \n\n",
		"blank": " \n\t\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// load writes yaml (with $DIR replaced by dir) to a file in dir and loads it
// with env as the environment.
func load(t *testing.T, dir, yaml string, env map[string]string) (string, []skills.Skill, error) {
	t.Helper()
	path := filepath.Join(dir, "skills.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(yaml, "$DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := skills.Load(path, func(k string) string { return env[k] })
	return path, list, err
}

var testEnv = map[string]string{"BABY_SECRET": envSecret, "PADDED_SECRET": "  " + envSecret + "\n", "EMPTY_SECRET": ""}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	secretFiles(t, dir)
	for _, tc := range []struct {
		name string
		yaml string
		want []skills.Skill
	}{
		{"TwoSkills", `
# The skills of this broker.
skills:
  - id: baby
    lwa_client_id: amzn1.application-oa2-client.1111aaaa
    lwa_client_secret: env:BABY_SECRET
    alexa_client_ids: [alexa-baby]
    region: NA
  - id: home
    lwa_client_id: amzn1.application-oa2-client.2222bbbb
    lwa_client_secret: file:$DIR/good
    alexa_client_ids:
      - alexa-home-na
      - alexa-home-eu
    region: EU
`, []skills.Skill{
			{ID: "baby", LWAClientID: "amzn1.application-oa2-client.1111aaaa", LWAClientSecret: envSecret, AlexaClientIDs: []string{"alexa-baby"}, Region: "NA"},
			{ID: "home", LWAClientID: "amzn1.application-oa2-client.2222bbbb", LWAClientSecret: fileSecret, AlexaClientIDs: []string{"alexa-home-na", "alexa-home-eu"}, Region: "EU"},
		}},
		{"NoRegion", `
skills:
  - id: default
    lwa_client_id: amzn1.application-oa2-client.x
    lwa_client_secret: env:BABY_SECRET
    alexa_client_ids: [alexa]
`, []skills.Skill{{ID: "default", LWAClientID: "amzn1.application-oa2-client.x", LWAClientSecret: envSecret, AlexaClientIDs: []string{"alexa"}}}},
		{"FERegionAndTrimmedEnv", `
skills:
  - {id: jp, lwa_client_id: c, lwa_client_secret: env:PADDED_SECRET, alexa_client_ids: [a], region: FE}
`, []skills.Skill{{ID: "jp", LWAClientID: "c", LWAClientSecret: envSecret, AlexaClientIDs: []string{"a"}, Region: "FE"}}},
		{"LongestIDAndNumbers", `
skills:
  - id: a-skill-of-thirty-two-characters
    lwa_client_id: c
    lwa_client_secret: "file:$DIR/good"
    alexa_client_ids: ["1", 2]
  - id: 123
    lwa_client_id: d
    lwa_client_secret: env:BABY_SECRET
    alexa_client_ids: [3]
`, []skills.Skill{
			{ID: "a-skill-of-thirty-two-characters", LWAClientID: "c", LWAClientSecret: fileSecret, AlexaClientIDs: []string{"1", "2"}},
			{ID: "123", LWAClientID: "d", LWAClientSecret: envSecret, AlexaClientIDs: []string{"3"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := load(t, dir, tc.yaml, testEnv)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLoad_Invalid checks that each bad shape of the file is refused with one
// line that starts with the setting and the path, names the skill and the
// field, and never holds a secret.
func TestLoad_Invalid(t *testing.T) {
	dir := t.TempDir()
	secretFiles(t, dir)
	// good is a valid skill, to which each case adds a line.
	const good = `
  - id: good
    lwa_client_id: c
    lwa_client_secret: env:BABY_SECRET
    alexa_client_ids: [alexa-good]
`
	for _, tc := range []struct {
		name string
		yaml string
		want []string // each must be in the error
	}{
		{"EmptyFile", ``, []string{"the file is empty"}},
		{"OnlyComments", "# nothing yet\n", []string{"the file is empty"}},
		{"BadYAML", "skills:\n  - id: [baby\n", []string{"not valid YAML", "line"}},
		{"TabIndent", "skills:\n\t- id: baby\n", []string{"not valid YAML"}},
		{"NotAMapping", "- id: baby\n", []string{"line 1", "the file must be a mapping with the key skills"}},
		{"SkillsNotAList", "skills: baby\n", []string{"line 1", "skills must be a list"}},
		{"SkillNotAMapping", "skills:\n  - lwa_client_secret " + literalSecret + "\n", []string{"line 2", "each skill must be a mapping"}},
		{"NoSkills", "skills: []\n", []string{"skills: at least one skill is required"}},
		{"NullSkills", "skills:\n", []string{"skills: at least one skill is required"}},
		{"UnknownTopField", "skill:\n" + good, []string{`line 1: unknown field "skill" at the top`, "skills: at least one skill is required"}},
		{"UnknownSkillField", "skills:" + good + "    regoin: EU\n", []string{`line 6: unknown field "regoin" in a skill`, "known: id, lwa_client_id"}},
		{"UnknownFieldAndOtherProblem", "skills:" + good + "    secret: x\n    region: eu\n", []string{`unknown field "secret"`, `skill 1 ("good"): region: "eu" must be NA, EU or FE`}},
		{"KeyTwice", "skills:" + good + "    region: NA\n    region: EU\n", []string{`line 7: mapping key "region" already defined at line 6`}},
		{"TwoDocuments", "skills:" + good + "---\nskills: []\n", []string{"one YAML document"}},
		{"MissingID", "skills:" + strings.Replace(good, "id: good", "id:", 1), []string{"skill 1 (no id): id: required"}},
		{"UpperCaseID", "skills:" + strings.Replace(good, "id: good", "id: Good", 1), []string{`skill 1 ("Good"): id: "Good" must be 1 to 32 lowercase letters`}},
		{"LongID", "skills:" + strings.Replace(good, "id: good", "id: "+strings.Repeat("a", 33), 1), []string{"id:", "must be 1 to 32"}},
		{"IDWithUnderscore", "skills:" + strings.Replace(good, "id: good", "id: my_skill", 1), []string{`id: "my_skill" must be`}},
		{"IDList", "skills:" + strings.Replace(good, "id: good", "id: [good]", 1), []string{"skill 1 (no id): id: must be a string (line 2)"}},
		{"DuplicateID", "skills:" + good + strings.Replace(good, "alexa-good", "alexa-other", 1), []string{`skill 2 ("good"): id: "good" is also the id of skill 1 ("good")`}},
		{"MissingLWAClientID", "skills:" + strings.Replace(good, "lwa_client_id: c", "lwa_client_id: ''", 1), []string{`skill 1 ("good"): lwa_client_id: required`}},
		{"LWAClientIDMapping", "skills:" + strings.Replace(good, "lwa_client_id: c", "lwa_client_id: {a: b}", 1), []string{"lwa_client_id: must be a string"}},
		{"MissingSecret", "skills:" + strings.Replace(good, "lwa_client_secret: env:BABY_SECRET", "", 1), []string{`skill 1 ("good"): lwa_client_secret: required: env:NAME or file:PATH`}},
		{"LiteralSecret", "skills:" + strings.Replace(good, "env:BABY_SECRET", literalSecret, 1), []string{`skill 1 ("good"): lwa_client_secret: a literal secret is refused; use env:NAME or file:PATH (line 4)`}},
		{"LiteralSecretQuoted", "skills:" + strings.Replace(good, "env:BABY_SECRET", `"`+literalSecret+`"`, 1), []string{"lwa_client_secret: a literal secret is refused"}},
		{"UpperCasePrefix", "skills:" + strings.Replace(good, "env:BABY_SECRET", "ENV:BABY_SECRET", 1), []string{"lwa_client_secret: a literal secret is refused"}},
		{"SecretList", "skills:" + strings.Replace(good, "env:BABY_SECRET", "["+literalSecret+"]", 1), []string{"lwa_client_secret: must be env:NAME or file:PATH"}},
		{"EnvUnset", "skills:" + strings.Replace(good, "BABY_SECRET", "NO_SUCH_SECRET", 1), []string{"lwa_client_secret: env:NO_SUCH_SECRET: the environment variable NO_SUCH_SECRET is unset or empty"}},
		{"EnvEmpty", "skills:" + strings.Replace(good, "BABY_SECRET", "EMPTY_SECRET", 1), []string{"lwa_client_secret: env:EMPTY_SECRET: the environment variable EMPTY_SECRET is unset or empty"}},
		{"EnvNoName", "skills:" + strings.Replace(good, "env:BABY_SECRET", "'env:'", 1), []string{"lwa_client_secret: env: must be followed by the name"}},
		{"EnvBadName", "skills:" + strings.Replace(good, "env:BABY_SECRET", "env:"+literalSecret, 1), []string{"lwa_client_secret: env: must be followed by the name"}},
		{"FileMissing", "skills:" + strings.Replace(good, "env:BABY_SECRET", "file:$DIR/missing", 1), []string{"lwa_client_secret: cannot read file:" + dir + "/missing: no such file or directory"}},
		{"FileIsDirectory", "skills:" + strings.Replace(good, "env:BABY_SECRET", "file:$DIR", 1), []string{"lwa_client_secret: cannot read file:" + dir + ":"}},
		{"FileBlank", "skills:" + strings.Replace(good, "env:BABY_SECRET", "file:$DIR/blank", 1), []string{"lwa_client_secret: file:" + dir + "/blank is empty"}},
		{"FileNoPath", "skills:" + strings.Replace(good, "env:BABY_SECRET", "'file:'", 1), []string{"lwa_client_secret: file: must be followed by the path"}},
		{"MissingClientIDs", "skills:" + strings.Replace(good, "alexa_client_ids: [alexa-good]", "", 1), []string{`skill 1 ("good"): alexa_client_ids: required`}},
		{"NoClientIDs", "skills:" + strings.Replace(good, "[alexa-good]", "[]", 1), []string{"alexa_client_ids: required: at least one client id (line 5)"}},
		{"ClientIDsNotAList", "skills:" + strings.Replace(good, "[alexa-good]", "alexa-good", 1), []string{"alexa_client_ids: must be a list of client ids"}},
		{"EmptyClientID", "skills:" + strings.Replace(good, "[alexa-good]", "[alexa-good, '']", 1), []string{"alexa_client_ids: item 2 must be a client id, not empty"}},
		{"ClientIDMapping", "skills:" + strings.Replace(good, "[alexa-good]", "[{a: b}]", 1), []string{"alexa_client_ids: item 1 must be a client id"}},
		{"ClientIDTwiceInOneSkill", "skills:" + strings.Replace(good, "[alexa-good]", "[alexa-good, alexa-good]", 1), []string{`alexa_client_ids: "alexa-good" is listed twice`}},
		{"ClientIDInTwoSkills", "skills:" + good + strings.Replace(good, "id: good", "id: other", 1), []string{`skill 2 ("other"): alexa_client_ids: "alexa-good" also belongs to skill 1 ("good")`}},
		{"LowerCaseRegion", "skills:" + good + "    region: eu\n", []string{`region: "eu" must be NA, EU or FE (line 6)`}},
		{"UnknownRegion", "skills:" + good + "    region: US\n", []string{`region: "US" must be NA, EU or FE`}},
		{"RegionList", "skills:" + good + "    region: [NA]\n", []string{"region: must be NA, EU or FE"}},
		{"EveryProblemTogether", "skills:" + strings.Replace(good, "env:BABY_SECRET", literalSecret, 1) +
			"  - id: Home\n    alexa_client_ids: [alexa-good]\n    region: us\n", []string{
			`skill 1 ("good"): lwa_client_secret: a literal secret is refused`,
			`skill 2 ("Home"): id: "Home" must be`,
			`skill 2 ("Home"): lwa_client_id: required`,
			`skill 2 ("Home"): lwa_client_secret: required`,
			`skill 2 ("Home"): alexa_client_ids: "alexa-good" also belongs to skill 1 ("good")`,
			`skill 2 ("Home"): region: "us" must be`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, got, err := load(t, dir, tc.yaml, testEnv)
			if err == nil {
				t.Fatalf("Load succeeded with %d skills, want an error", len(got))
			}
			msg := err.Error()
			if prefix := "BROKER_SKILLS_FILE: " + path + ": "; !strings.HasPrefix(msg, prefix) {
				t.Errorf("error %q does not start with %q", msg, prefix)
			}
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			for _, secret := range []string{literalSecret, envSecret, fileSecret, literalSecret[:7]} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains a secret", msg)
				}
			}
		})
	}
}

func TestLoad_MissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := skills.Load(path, func(string) string { return "" })
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	if got, want := err.Error(), "BROKER_SKILLS_FILE: "+path+": cannot read the file: no such file or directory"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

// TestLoad_FileReadOnce: a file: secret is read at Load; changing the file
// afterwards does not change the loaded skill.
func TestLoad_FileReadOnce(t *testing.T) {
	dir := t.TempDir()
	secretFiles(t, dir)
	_, list, err := load(t, dir, "skills:\n  - {id: a, lwa_client_id: c, lwa_client_secret: file:$DIR/good, alexa_client_ids: [x]}\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good"), []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := list[0].LWAClientSecret; got != tokens.Secret(fileSecret) {
		t.Errorf("LWAClientSecret = %q, want the file's content at Load", got.Reveal())
	}
}
