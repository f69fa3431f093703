package sim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of SetOptions.
const (
	// DefaultUser is the user whom a Set's user-specific faults strike and for
	// whom its admin route mints codes when SetOptions.User is empty: the
	// sandbox's demo parent.
	DefaultUser = "demo-parent"
	// DefaultAlexaClientID is the client id the partner issued to Alexa, as
	// BrokerEnv configures it, when SetOptions.AlexaClientID is empty.
	DefaultAlexaClientID = "alexa-skill-client"
)

// SetOptions configures StartSet. The zero value starts the LWA, Alexa Health
// API and authorization server simulators and the admin route on free loopback
// ports, without KMS.
type SetOptions struct {
	// LWAAddr, AlexaAddr and AuthAddr are the addresses of the LWA, Alexa Health
	// API and authorization server simulators. They must be loopback
	// addresses; empty means "127.0.0.1:0", a free port.
	LWAAddr   string
	AlexaAddr string
	AuthAddr  string
	// AdminAddr is the address of the admin route; empty means "127.0.0.1:0".
	// Unlike the simulators' addresses it may be any address.
	AdminAddr string
	// KMS starts the KMS simulator too, on a free loopback port, holding one
	// master key, DefaultKMSKeyID.
	KMS bool
	// Now is the clock of the LWA and Alexa simulators (code and token expiry,
	// the stamps of received reports); nil means time.Now. The authorization
	// server keeps real time, as the broker's token verifier does.
	Now func() time.Time
	// User is whom the user-specific faults strike and whom POST /codes mints
	// a code for when the request names nobody; empty means DefaultUser.
	User string
	// AlexaClientID is the client id BrokerEnv names in BROKER_ALEXA_CLIENT_IDS;
	// empty means DefaultAlexaClientID.
	AlexaClientID string
	// Skills are the skills of a broker that serves several, for SkillsEnv:
	// StartSet registers each one's LWA client at the LWA simulator. Empty
	// means none; BrokerEnv's single skill is there either way.
	Skills []Skill
}

// Skill is one skill of a Set, for a broker that serves several: a client of
// the LWA simulator, and the client the partner issued to Alexa for it.
type Skill struct {
	// ID is the broker's name for the skill: 1 to 32 lowercase letters,
	// digits or '-'. It is required and unique.
	ID string
	// AlexaClientID is the client id the partner issued to Alexa for the
	// skill: the client_id of the user tokens that Auth.UserToken mints for
	// its hand-overs. Empty means "alexa-" followed by ID. It is unique.
	AlexaClientID string
	// Region is the skill's Alexa region in the skills file: "NA", "EU",
	// "FE", or "" to leave it out. The Alexa simulator serves every region.
	Region string
	// LWAClientID is the skill's Alexa Client Id at the LWA simulator; empty
	// means DefaultLWAClientID, a '.' and ID. StartSet registers it with a
	// fresh random secret, unless it is the LWA simulator's default client
	// (the single skill of BrokerEnv), whose credentials the skill then
	// shares. It is unique.
	LWAClientID string
}

// skillIDPattern is the form of a skill id, as the skills file requires it.
var skillIDPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// fillSkills fills the defaults of skills in place and returns every problem
// with them, on one line naming each skill, or nil.
func fillSkills(skills []Skill) error {
	var problems []string
	ids, alexa, lwa := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := range skills {
		sk := &skills[i]
		if sk.AlexaClientID == "" {
			sk.AlexaClientID = "alexa-" + sk.ID
		}
		if sk.LWAClientID == "" {
			sk.LWAClientID = DefaultLWAClientID + "." + sk.ID
		}
		name := fmt.Sprintf("skill %d (%q)", i+1, sk.ID)
		switch {
		case !skillIDPattern.MatchString(sk.ID):
			problems = append(problems, name+": the id must be 1 to 32 lowercase letters, digits or '-'")
		case ids[sk.ID]:
			problems = append(problems, name+": the id is taken by an earlier skill")
		}
		if alexa[sk.AlexaClientID] {
			problems = append(problems, name+": the Alexa client id is taken by an earlier skill")
		}
		if lwa[sk.LWAClientID] {
			problems = append(problems, name+": the LWA client id is taken by an earlier skill")
		}
		switch sk.Region {
		case "", "NA", "EU", "FE":
		default:
			problems = append(problems, name+": the region must be NA, EU, FE or empty")
		}
		ids[sk.ID], alexa[sk.AlexaClientID], lwa[sk.LWAClientID] = true, true, true
	}
	if len(problems) > 0 {
		return fmt.Errorf("SetOptions.Skills: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Set is every party around the broker, simulated and started together for
// tests, `broker sandbox` and `broker simulate`: Login with Amazon, the Alexa
// API host (the Health API and the Event Gateway, accepting LWA's access
// tokens), the partner's authorization server, the companion backend's webhook
// receiver, KMS when asked, and an admin route that switches faults and mints
// authorization codes:
//
//	POST   /faults/{target}/{kind}?count=N   switch a fault on (see FaultNames)
//	DELETE /faults                           switch every fault off
//	POST   /codes?user=U                     a fresh LWA code for U, as text
//	POST   /codes?user=U&skill=S             the same, for skill S of SetOptions.Skills
//
// BrokerEnv gives the settings that point a broker of one skill at the Set,
// SkillsEnv those of a broker of the skills of SetOptions.Skills; Close stops
// it all. The simulators' own methods are reached through the fields.
type Set struct {
	// LWA, Alexa and Auth are the running simulators; Alexa.Events() is the
	// Event Gateway.
	LWA   *LWA
	Alexa *Alexa
	Auth  *AuthServer
	// Webhooks is the running webhook receiver: the partner's companion
	// backend, told of link events.
	Webhooks *Webhooks
	// KMS is the running KMS simulator, or nil when SetOptions.KMS was false.
	KMS *KMS
	// Faults switches the simulators' faults on by name, as the admin route
	// does.
	Faults *Faults

	user, alexaClientID string
	skills              []setSkill
	admin               server
}

// setSkill is a skill of the Set with its LWA client secret.
type setSkill struct {
	Skill
	lwaSecret string
}

// StartSet starts the simulators and the admin route that opts describe, and
// returns once all of them are serving. They stop when Close is called or ctx
// is done. It returns an error naming the part that could not start, such as a
// port in use or a simulator's address that is not a loopback address, and what
// had started is stopped again then; or, before starting anything, one naming
// every skill of SetOptions.Skills that is invalid (an id of the wrong form, a
// region other than NA, EU or FE, an id or client id given twice).
func StartSet(ctx context.Context, opts SetOptions) (*Set, error) {
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.AlexaClientID == "" {
		opts.AlexaClientID = DefaultAlexaClientID
	}
	if opts.AdminAddr == "" {
		opts.AdminAddr = "127.0.0.1:0"
	}
	opts.Skills = slices.Clone(opts.Skills)
	if err := fillSkills(opts.Skills); err != nil {
		return nil, err
	}
	s := &Set{user: opts.User, alexaClientID: opts.AlexaClientID}
	if err := s.start(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// start starts the parts one by one; StartSet stops them when one fails.
func (s *Set) start(ctx context.Context, opts SetOptions) error {
	s.LWA = NewLWA(LWAOptions{Addr: opts.LWAAddr, Now: opts.Now})
	if err := s.LWA.Start(ctx); err != nil {
		return fmt.Errorf("the LWA simulator: %w", err)
	}
	for _, sk := range opts.Skills {
		secret := s.LWA.ClientSecret()
		if sk.LWAClientID != s.LWA.ClientID() {
			secret = "sim-lwa-secret-" + lwaRandom(32)
			if err := s.LWA.AddClient(sk.LWAClientID, secret); err != nil {
				return fmt.Errorf("skill %q: %w", sk.ID, err)
			}
		}
		s.skills = append(s.skills, setSkill{Skill: sk, lwaSecret: secret})
	}
	s.Alexa = NewAlexa(AlexaOptions{Addr: opts.AlexaAddr, LWA: s.LWA, Now: opts.Now})
	if err := s.Alexa.Start(ctx); err != nil {
		return fmt.Errorf("the Alexa Health API simulator: %w", err)
	}
	var err error
	if s.Auth, err = NewAuthServer(AuthServerOptions{Addr: opts.AuthAddr}); err == nil {
		err = s.Auth.Start(ctx)
	}
	if err != nil {
		return fmt.Errorf("authorization server simulator: %w", err)
	}
	s.Webhooks = NewWebhooks(WebhooksOptions{})
	if err := s.Webhooks.Start(ctx); err != nil {
		return fmt.Errorf("the webhook receiver simulator: %w", err)
	}
	if opts.KMS {
		s.KMS = NewKMS(KMSOptions{})
		if err := s.KMS.Start(ctx); err != nil {
			return fmt.Errorf("the KMS simulator: %w", err)
		}
	}
	s.Faults = &Faults{LWA: s.LWA, Alexa: s.Alexa, Webhooks: s.Webhooks, User: s.user}
	if err := s.admin.listen(ctx, "admin", opts.AdminAddr, s.adminHandler()); err != nil {
		return fmt.Errorf("simulators' admin route: %w", err)
	}
	return nil
}

// adminHandler serves the admin route.
func (s *Set) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/faults", s.Faults.Handler())
	mux.Handle("/faults/", s.Faults.Handler())
	mux.HandleFunc("POST /codes", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		user := q.Get("user")
		if user == "" {
			user = s.user
		}
		code := s.LWA.IssueCodeFor(user)
		if q.Has("skill") {
			var err error
			if code, err = s.IssueCodeForSkill(user, q.Get("skill")); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, code)
	})
	return mux
}

// AdminURL returns the admin route's base URL, such as
// "http://127.0.0.1:41234".
func (s *Set) AdminURL() string { return s.admin.url() }

// BrokerEnv returns the settings that point a broker of one skill at the Set,
// by environment variable: the LWA client credentials (the LWA simulator's
// default client) and token URL, the Alexa
// API URL and Alexa's client id, the authorization server's issuer, audience
// and JWKS URL, the webhook receiver's URL and secret, and with KMS its endpoint and BROKER_ENCRYPTION_KEY naming
// DefaultKMSKeyID. The map is new on every call; the caller may change it.
func (s *Set) BrokerEnv() map[string]string {
	env := map[string]string{
		"BROKER_LWA_CLIENT_ID":     s.LWA.ClientID(),
		"BROKER_LWA_CLIENT_SECRET": s.LWA.ClientSecret(),
		"BROKER_LWA_TOKEN_URL":     s.LWA.TokenURL(),
		"BROKER_ALEXA_API_URL":     s.Alexa.URL(),
		"BROKER_ALEXA_CLIENT_IDS":  s.alexaClientID,
		"BROKER_JWT_ISSUER":        s.Auth.Issuer(),
		"BROKER_JWT_AUDIENCE":      s.Auth.Audience(),
		"BROKER_JWT_JWKS_URL":      s.Auth.JWKSURL(),
		"BROKER_WEBHOOK_URL":       s.Webhooks.URL(),
		"BROKER_WEBHOOK_SECRET":    s.Webhooks.Secret().Reveal(),
	}
	if s.KMS != nil {
		env["BROKER_KMS_ENDPOINT"] = s.KMS.URL()
		env["BROKER_ENCRYPTION_KEY"] = "kms:" + DefaultKMSKeyID
	}
	return env
}

// singleSkillSettings are the settings of BrokerEnv's single skill, which
// SkillsEnv leaves out.
var singleSkillSettings = []string{"BROKER_LWA_CLIENT_ID", "BROKER_LWA_CLIENT_SECRET", "BROKER_ALEXA_CLIENT_IDS", "BROKER_ALEXA_REGION"}

// Skills returns the skills of SetOptions.Skills, in their order, with their
// defaults filled in. The slice is new on every call.
func (s *Set) Skills() []Skill {
	out := make([]Skill, len(s.skills))
	for i, sk := range s.skills {
		out[i] = sk.Skill
	}
	return out
}

// Skill returns the skill of SetOptions.Skills with the given id, with its
// defaults filled in, and whether there is one.
func (s *Set) Skill(id string) (Skill, bool) {
	for _, sk := range s.skills {
		if sk.ID == id {
			return sk.Skill, true
		}
	}
	return Skill{}, false
}

// IssueCodeForSkill mints a fresh LWA authorization code for user, issued to
// the LWA client of the skill skillID, as when the user links that skill: only
// that skill's credentials can exchange it. It returns an error when the Set
// has no such skill.
func (s *Set) IssueCodeForSkill(user, skillID string) (string, error) {
	sk, ok := s.Skill(skillID)
	if !ok {
		return "", fmt.Errorf("sim: no skill %q in the Set", skillID)
	}
	return s.LWA.IssueCodeForClient(user, sk.LWAClientID), nil
}

// SkillsEnv returns the settings that point a broker of the skills of
// SetOptions.Skills at the Set: those of BrokerEnv without the single skill's
// (BROKER_LWA_CLIENT_ID, BROKER_LWA_CLIENT_SECRET, BROKER_ALEXA_CLIENT_IDS,
// BROKER_ALEXA_REGION), and BROKER_SKILLS_FILE naming the skills file it
// writes in dir, skills.yaml. Each skill's LWA client secret is written to
// its own file in dir, lwa-secret-ID, readable by its owner only, and the
// skills file refers to it as file:PATH, so the file alone describes the
// skills. Paths are absolute; files already there are replaced. It returns an
// error when the Set has no skills or a file cannot be written. The map is new
// on every call; the caller may change it.
func (s *Set) SkillsEnv(dir string) (map[string]string, error) {
	if len(s.skills) == 0 {
		return nil, errors.New("sim: the Set has no skills (SetOptions.Skills)")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("sim: skills folder: %w", err)
	}
	var f skillsFile
	for _, sk := range s.skills {
		secretPath := filepath.Join(dir, "lwa-secret-"+sk.ID)
		if err := writePrivate(secretPath, []byte(sk.lwaSecret+"\n")); err != nil {
			return nil, fmt.Errorf("sim: skill %q: %w", sk.ID, err)
		}
		f.Skills = append(f.Skills, skillsFileEntry{
			ID:              sk.ID,
			LWAClientID:     sk.LWAClientID,
			LWAClientSecret: "file:" + secretPath,
			AlexaClientIDs:  []string{sk.AlexaClientID},
			Region:          sk.Region,
		})
	}
	data, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("sim: skills file: %w", err)
	}
	path := filepath.Join(dir, "skills.yaml")
	if err := writePrivate(path, data); err != nil {
		return nil, fmt.Errorf("sim: skills file: %w", err)
	}
	env := s.BrokerEnv()
	for _, k := range singleSkillSettings {
		delete(env, k)
	}
	env["BROKER_SKILLS_FILE"] = path
	return env, nil
}

// skillsFile is the skills file that SkillsEnv writes, in the form the
// broker's BROKER_SKILLS_FILE reads.
type skillsFile struct {
	Skills []skillsFileEntry `yaml:"skills"`
}

// skillsFileEntry is one skill of skillsFile.
type skillsFileEntry struct {
	ID              string   `yaml:"id"`
	LWAClientID     string   `yaml:"lwa_client_id"`
	LWAClientSecret string   `yaml:"lwa_client_secret"`
	AlexaClientIDs  []string `yaml:"alexa_client_ids"`
	Region          string   `yaml:"region,omitempty"`
}

// writePrivate writes data to the file at path, readable and writable by its
// owner only, replacing what was there.
func writePrivate(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	// WriteFile keeps the mode of a file that was already there.
	return os.Chmod(path, 0o600)
}

// Close stops the admin route and every simulator: in-flight requests are
// cancelled and their handlers waited for. Calling it more than once is
// harmless; it always returns nil.
func (s *Set) Close() error {
	s.admin.close()
	if s.KMS != nil {
		s.KMS.Close()
	}
	if s.Webhooks != nil {
		s.Webhooks.Close()
	}
	if s.Auth != nil {
		s.Auth.Close()
	}
	if s.Alexa != nil {
		s.Alexa.Close()
	}
	if s.LWA != nil {
		s.LWA.Close()
	}
	return nil
}
