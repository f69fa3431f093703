// Package config reads the broker's settings from flags and environment
// variables and validates them once, at start-up, so the broker never runs
// half-configured. Every flag has an environment variable of the same meaning
// (--grpc-addr ↔ BROKER_GRPC_ADDR); a flag given on the command line wins.
package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/skills"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// DefaultGRPCAddr is where the broker serves gRPC when BROKER_GRPC_ADDR is
// not set, and where the operator commands reach it then.
const DefaultGRPCAddr = "127.0.0.1:9090"

// Config is the broker's validated configuration.
type Config struct {
	GRPCAddr string
	HTTPAddr string

	// Store is the raw BROKER_STORE value; StoreKind and StoreTarget are its parts
	// ("bolt" and a file path, or "dynamodb" and a table name).
	Store       string
	StoreKind   string
	StoreTarget string

	DynamoDBEndpoint    string
	DynamoDBCreateTable bool
	// DynamoDBClockOrder switches the table to clock order
	// (BROKER_DYNAMODB_CLOCK_ORDER; see dynamo.Options.ClockOrder).
	DynamoDBClockOrder bool

	// SkillsFile is the path of the YAML file of the skills the broker
	// serves (BROKER_SKILLS_FILE); empty means one skill, named
	// skills.Default, made from the single-skill settings.
	SkillsFile string
	// Skills are the skills the broker serves, in the file's order, filled
	// by Parse: from SkillsFile when it is set, else one skill named
	// skills.Default from LWAClientID, LWAClientSecret, AlexaClientIDs and
	// AlexaRegion. They are the truth about skills: with a skills file,
	// those four single-skill settings are empty.
	Skills []skills.Skill

	// LWAClientID and LWAClientSecret are the single skill's Alexa Client Id
	// and Secret; empty with a skills file (see Skills).
	LWAClientID     string
	LWAClientSecret tokens.Secret
	LWATokenURL     string
	AlexaAPIURL     string
	// AlexaClientIDs are the client ids the partner issued to Alexa for the
	// single skill; empty with a skills file (see Skills).
	AlexaClientIDs []string

	JWTIssuer        string
	JWTAudience      string
	JWTJWKSURL       string
	JWTPublicKeyFile string
	JWTHS256Secret   tokens.Secret

	// JWTProfile names the claim profile of the partner's access tokens (see
	// auth.ProfileNames): which claims name the client and carry the scopes.
	// JWTClientClaim and JWTScopeClaims, when set, replace the profile's
	// claims; JWTClients, when set, are the only clients accepted.
	JWTProfile     string
	JWTClientClaim string
	JWTScopeClaims []string
	JWTClients     []string
	// JWTJWKSRefresh is how often the JWKS is fetched: a key withdrawn from it
	// stops verifying tokens, remembered ones included, within this time.
	JWTJWKSRefresh time.Duration

	// ScopeTokens, ScopeProfiles, ScopeAdmin and ScopeEvents are the scope (or
	// app role) names that grant each right, as the partner's server spells
	// them.
	ScopeTokens   string
	ScopeProfiles string
	ScopeAdmin    string
	ScopeEvents   string

	// EncryptionKey is a comma list of keys, each base64 of 32 bytes or
	// "kms:KEY_ID": the first seals, every one opens (see EncryptionKeys).
	EncryptionKey tokens.Secret
	// ResealRate is how many links a second are sealed again, in the
	// background, under the first encryption key; 0 turns that off.
	ResealRate int
	// KMSEndpoint overrides the AWS KMS endpoint that a kms:KEY_ID encryption
	// key uses (local servers and simulators); empty means AWS's own.
	KMSEndpoint string

	RefreshAhead      time.Duration
	BackgroundRefresh time.Duration

	// AlexaRegion is the Alexa API region new links of the single skill
	// remember ("NA", "EU", "FE"), or "" for the host of
	// BROKER_ALEXA_API_URL; empty with a skills file (see Skills).
	AlexaRegion     string
	ReportDeadline  time.Duration
	ReportRetention time.Duration
	// EventRetention is how long events (the audit trail) are kept, also
	// after their link is deleted.
	EventRetention time.Duration

	LogLevel string

	// WebhookURL is where events are POSTed; empty turns webhooks off.
	// WebhookSecret signs them (whsec_ and base64 of 24 to 64 bytes);
	// WebhookEvents are the event types sent; WebhookDeadline is how long one
	// event is retried.
	WebhookURL      string
	WebhookSecret   tokens.Secret
	WebhookEvents   []tokens.EventType
	WebhookDeadline time.Duration

	// AuthorizeRateUser and AuthorizeRateClient limit the reciprocal
	// hand-overs of each user and of each client.
	AuthorizeRateUser   Rate
	AuthorizeRateClient Rate

	// ConsoleClientID is the operator console's public client at the
	// partner's authorization server; empty turns the console off.
	ConsoleClientID string
	// PublicURL is the broker's URL as browsers reach it, without a trailing
	// slash: the console's redirect URI is it followed by /console/. Empty
	// means "http://" and the host the browser asked for: the address the
	// HTTP gateway listens on, when browsers reach it directly.
	PublicURL string
	// ConsoleScopes are the scopes the console asks for: "openid" and
	// ScopeAdmin unless set.
	ConsoleScopes []string
	// ConsoleAudience is sent as audience and resource in the console's
	// authorization request, for servers that need one to mint a token for
	// the broker; empty sends neither.
	ConsoleAudience string
}

// Rate is a rate limit: Count per Per, up to Count at once; a zero Count is no
// limit. It is written COUNT/PER, like 10/1m, or 0.
type Rate struct {
	Count int
	Per   time.Duration
}

// rate returns the bind of a Rate setting: COUNT/PER with a positive count and
// duration, or 0 for no limit.
func rate(dst func(*Config) *Rate) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if v == "0" {
			*dst(c) = Rate{}
			return nil
		}
		count, per, ok := strings.Cut(v, "/")
		n, err := strconv.Atoi(count)
		d, derr := time.ParseDuration(per)
		if !ok || err != nil || derr != nil || n <= 0 || d <= 0 {
			return errors.New("must be COUNT/PERIOD with a positive count and duration (like 10/1m), or 0 for no limit")
		}
		*dst(c) = Rate{Count: n, Per: d}
		return nil
	}
}

// setting describes one flag and its environment variable. A boolean
// setting's flag may stand alone (--dynamodb-create-table means true).
type setting struct {
	flag, env, def, usage string
	secret, boolean       bool
	bind                  func(c *Config, v string) error
}

// flagValue is the value of one setting's flag: the text given, parsed by the
// setting's bind once every source is read.
type flagValue struct {
	text    string
	boolean bool
}

// String returns the text given.
func (v *flagValue) String() string { return v.text }

// Set keeps the text given on the command line.
func (v *flagValue) Set(text string) error { v.text = text; return nil }

// IsBoolFlag tells the flag package that a boolean setting's flag may stand
// alone, meaning true.
func (v *flagValue) IsBoolFlag() bool { return v.boolean }

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = strings.TrimSpace(v); return nil }
}

// truth binds a true-or-false setting, as strconv.ParseBool reads it.
func truth(dst func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not true or false", strings.TrimSpace(v))
		}
		*dst(c) = b
		return nil
	}
}

func secret(dst func(*Config) *tokens.Secret) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = tokens.Secret(strings.TrimSpace(v)); return nil }
}

// list binds a comma list, dropping empty entries and the space around each.
func list(dst func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*dst(c) = nil
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				*dst(c) = append(*dst(c), e)
			}
		}
		return nil
	}
}

func duration(dst func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return errors.New("not a duration (like 5m or 24h)")
		}
		*dst(c) = d
		return nil
	}
}

// settings lists every setting of the broker, in the order --help shows them.
var settings = []setting{
	{flag: "grpc-addr", env: "BROKER_GRPC_ADDR", def: DefaultGRPCAddr, usage: "gRPC listen address",
		bind: str(func(c *Config) *string { return &c.GRPCAddr })},
	{flag: "http-addr", env: "BROKER_HTTP_ADDR", def: "127.0.0.1:8080", usage: "HTTP gateway listen address",
		bind: str(func(c *Config) *string { return &c.HTTPAddr })},
	{flag: "store", env: "BROKER_STORE", def: "bolt:./data/broker.db", usage: "bolt:PATH (embedded) or dynamodb:TABLE",
		bind: func(c *Config, v string) error {
			c.Store = strings.TrimSpace(v)
			c.StoreKind, c.StoreTarget, _ = strings.Cut(c.Store, ":")
			return nil
		}},
	{flag: "dynamodb-endpoint", env: "BROKER_DYNAMODB_ENDPOINT", usage: "DynamoDB endpoint override (local servers)",
		bind: str(func(c *Config) *string { return &c.DynamoDBEndpoint })},
	{flag: "dynamodb-create-table", env: "BROKER_DYNAMODB_CREATE_TABLE", def: "false", usage: "create the DynamoDB table when it does not exist (local servers, tests); the flag alone means true", boolean: true,
		bind: truth(func(c *Config) *bool { return &c.DynamoDBCreateTable })},
	{flag: "dynamodb-clock-order", env: "BROKER_DYNAMODB_CLOCK_ORDER", def: "false", usage: "switch the table's reports from counter order to clock order, one write per accepted report; irreversible, and brokers before clock order then refuse reports: set it once every instance runs this version", boolean: true,
		bind: truth(func(c *Config) *bool { return &c.DynamoDBClockOrder })},
	{flag: "skills-file", env: skillsFileEnv, usage: "YAML file of the skills this broker serves (unset: one skill, default, from the single-skill settings below)",
		bind: str(func(c *Config) *string { return &c.SkillsFile })},
	{flag: "lwa-client-id", env: "BROKER_LWA_CLIENT_ID", usage: "the skill's Alexa Client Id (required without BROKER_SKILLS_FILE)",
		bind: str(func(c *Config) *string { return &c.LWAClientID })},
	{flag: "lwa-client-secret", env: "BROKER_LWA_CLIENT_SECRET", usage: "the skill's Alexa Client Secret (required without BROKER_SKILLS_FILE; prefer the environment)", secret: true,
		bind: secret(func(c *Config) *tokens.Secret { return &c.LWAClientSecret })},
	{flag: "lwa-token-url", env: "BROKER_LWA_TOKEN_URL", def: "https://api.amazon.com/auth/o2/token", usage: "LWA token endpoint",
		bind: str(func(c *Config) *string { return &c.LWATokenURL })},
	{flag: "alexa-api-url", env: "BROKER_ALEXA_API_URL", def: "https://api.amazonalexa.com", usage: "Alexa API base URL",
		bind: str(func(c *Config) *string { return &c.AlexaAPIURL })},
	{flag: "alexa-client-ids", env: "BROKER_ALEXA_CLIENT_IDS", usage: "comma list of client ids the partner issued to Alexa (required without BROKER_SKILLS_FILE)",
		bind: func(c *Config, v string) error {
			c.AlexaClientIDs = nil
			for _, id := range strings.Split(v, ",") {
				if id = strings.TrimSpace(id); id != "" {
					c.AlexaClientIDs = append(c.AlexaClientIDs, id)
				}
			}
			return nil
		}},
	{flag: "jwt-issuer", env: "BROKER_JWT_ISSUER", usage: "expected iss of bearer JWTs (required)",
		bind: str(func(c *Config) *string { return &c.JWTIssuer })},
	{flag: "jwt-audience", env: "BROKER_JWT_AUDIENCE", usage: "expected aud of bearer JWTs (required)",
		bind: str(func(c *Config) *string { return &c.JWTAudience })},
	{flag: "jwt-jwks-url", env: "BROKER_JWT_JWKS_URL", usage: "JWKS URL of the partner's authorization server",
		bind: str(func(c *Config) *string { return &c.JWTJWKSURL })},
	{flag: "jwt-public-key-file", env: "BROKER_JWT_PUBLIC_KEY_FILE", usage: "PEM public key that signs bearer JWTs",
		bind: str(func(c *Config) *string { return &c.JWTPublicKeyFile })},
	{flag: "jwt-hs256-secret", env: "BROKER_JWT_HS256_SECRET", usage: "HS256 secret for bearer JWTs (development only)", secret: true,
		bind: secret(func(c *Config) *tokens.Secret { return &c.JWTHS256Secret })},
	{flag: "jwt-profile", env: "BROKER_JWT_PROFILE", def: auth.DefaultProfile, usage: "claim profile of the partner's access tokens: " + strings.Join(auth.ProfileNames(), ", "),
		bind: str(func(c *Config) *string { return &c.JWTProfile })},
	{flag: "jwt-client-claim", env: "BROKER_JWT_CLIENT_CLAIM", usage: "the claim that names the client, replacing the profile's (unset: the profile's)",
		bind: str(func(c *Config) *string { return &c.JWTClientClaim })},
	{flag: "jwt-scope-claims", env: "BROKER_JWT_SCOPE_CLAIMS", usage: "comma list of the claims whose scopes are joined, replacing the profile's (unset: the profile's)",
		bind: list(func(c *Config) *[]string { return &c.JWTScopeClaims })},
	{flag: "jwt-clients", env: "BROKER_JWT_CLIENTS", usage: "comma list: when set, every token's client must be on it (required with the cognito profile)",
		bind: list(func(c *Config) *[]string { return &c.JWTClients })},
	{flag: "jwt-jwks-refresh", env: "BROKER_JWT_JWKS_REFRESH", def: auth.DefaultJWKSRefreshInterval.String(), usage: "fetch the JWKS this often: a key withdrawn from it stops verifying tokens within this time (10s to 24h)",
		bind: duration(func(c *Config) *time.Duration { return &c.JWTJWKSRefresh })},
	{flag: "scope-tokens", env: "BROKER_SCOPE_TOKENS", def: "broker:tokens", usage: "the scope (or app role) that grants partner tokens and reading links",
		bind: str(func(c *Config) *string { return &c.ScopeTokens })},
	{flag: "scope-profiles", env: "BROKER_SCOPE_PROFILES", def: "broker:profiles", usage: "the scope (or app role) that grants profile reports",
		bind: str(func(c *Config) *string { return &c.ScopeProfiles })},
	{flag: "scope-admin", env: "BROKER_SCOPE_ADMIN", def: "broker:admin", usage: "the scope (or app role) that grants managing links",
		bind: str(func(c *Config) *string { return &c.ScopeAdmin })},
	{flag: "scope-events", env: "BROKER_SCOPE_EVENTS", def: "broker:events", usage: "the scope (or app role) of the skill backend's link events",
		bind: str(func(c *Config) *string { return &c.ScopeEvents })},
	{flag: "encryption-key", env: "BROKER_ENCRYPTION_KEY", usage: "comma list of keys, each base64 of 32 bytes or kms:KEY_ID: the first seals tokens at rest, every one opens them (required)", secret: true,
		bind: secret(func(c *Config) *tokens.Secret { return &c.EncryptionKey })},
	{flag: "reseal-rate", env: "BROKER_RESEAL_RATE", def: "20", usage: "links a second sealed again in the background under the first encryption key; 0 turns it off",
		bind: func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return errors.New("not a whole number")
			}
			c.ResealRate = n
			return nil
		}},
	{flag: "kms-endpoint", env: "BROKER_KMS_ENDPOINT", usage: "KMS endpoint override (local servers)",
		bind: str(func(c *Config) *string { return &c.KMSEndpoint })},
	{flag: "refresh-ahead", env: "BROKER_REFRESH_AHEAD", def: "5m", usage: "refresh a token this long before it expires",
		bind: duration(func(c *Config) *time.Duration { return &c.RefreshAhead })},
	{flag: "background-refresh", env: "BROKER_BACKGROUND_REFRESH", def: "24h", usage: "refresh in the background the links used within this window; 0 turns it off",
		bind: duration(func(c *Config) *time.Duration { return &c.BackgroundRefresh })},
	{flag: "alexa-region", env: "BROKER_ALEXA_REGION", usage: "Alexa API region of new links: NA, EU or FE (unset: the host of BROKER_ALEXA_API_URL)",
		bind: str(func(c *Config) *string { return &c.AlexaRegion })},
	{flag: "report-deadline", env: "BROKER_REPORT_DEADLINE", def: "24h", usage: "retry a profile report this long before it is FAILED",
		bind: duration(func(c *Config) *time.Duration { return &c.ReportDeadline })},
	{flag: "report-retention", env: "BROKER_REPORT_RETENTION", def: "168h", usage: "keep delivered and failed reports this long",
		bind: duration(func(c *Config) *time.Duration { return &c.ReportRetention })},
	{flag: "event-retention", env: "BROKER_EVENT_RETENTION", def: "2160h", usage: "keep events (the audit trail) this long, also after their link is deleted",
		bind: duration(func(c *Config) *time.Duration { return &c.EventRetention })},
	{flag: "log-level", env: "BROKER_LOG_LEVEL", def: "info", usage: "debug, info, warn or error, in any case",
		bind: func(c *Config, v string) error { c.LogLevel = strings.ToLower(strings.TrimSpace(v)); return nil }},
	{flag: "webhook-url", env: "BROKER_WEBHOOK_URL", usage: "where link events are POSTed, signed (unset: webhooks off)",
		bind: str(func(c *Config) *string { return &c.WebhookURL })},
	{flag: "webhook-secret", env: "BROKER_WEBHOOK_SECRET", usage: "whsec_ and the base64 of 24 to 64 random bytes: signs webhooks (required with BROKER_WEBHOOK_URL; prefer the environment)", secret: true,
		bind: secret(func(c *Config) *tokens.Secret { return &c.WebhookSecret })},
	{flag: "webhook-events", env: "BROKER_WEBHOOK_EVENTS", def: joinTypes(events.DefaultTypes), usage: "comma list of the event types sent to the webhook: " + joinTypes(tokens.EventTypes),
		bind: func(c *Config, v string) error {
			var names []string
			_ = list(func(*Config) *[]string { return &names })(c, v)
			c.WebhookEvents = nil
			for _, n := range names {
				c.WebhookEvents = append(c.WebhookEvents, tokens.EventType(n))
			}
			return nil
		}},
	{flag: "webhook-deadline", env: "BROKER_WEBHOOK_DEADLINE", def: "24h", usage: "retry one webhook this long after its event, then give it up",
		bind: duration(func(c *Config) *time.Duration { return &c.WebhookDeadline })},
	{flag: "authorize-rate-user", env: "BROKER_AUTHORIZE_RATE_USER", def: "10/1m", usage: "reciprocal hand-overs one user may make: COUNT/PERIOD, COUNT at once; beyond it 429 with Retry-After; 0 turns it off",
		bind: rate(func(c *Config) *Rate { return &c.AuthorizeRateUser })},
	{flag: "authorize-rate-client", env: "BROKER_AUTHORIZE_RATE_CLIENT", def: "1200/1m", usage: "reciprocal hand-overs one client (the JWT's client) may make: COUNT/PERIOD, COUNT at once; 0 turns it off",
		bind: rate(func(c *Config) *Rate { return &c.AuthorizeRateClient })},
	{flag: "console-client-id", env: "BROKER_CONSOLE_CLIENT_ID", usage: "the operator console's public client at the partner's authorization server (unset: the console is off)",
		bind: str(func(c *Config) *string { return &c.ConsoleClientID })},
	{flag: "public-url", env: "BROKER_PUBLIC_URL", usage: "the broker's URL as browsers reach it; the console's redirect URI is it + /console/ (unset: http:// + the host the browser asked for: the HTTP listen address when it reaches the broker directly)",
		bind: func(c *Config, v string) error {
			c.PublicURL = strings.TrimRight(strings.TrimSpace(v), "/")
			return nil
		}},
	{flag: "console-scopes", env: "BROKER_CONSOLE_SCOPES", usage: "the scopes the console asks for, separated by commas or spaces (unset: openid and BROKER_SCOPE_ADMIN)",
		bind: func(c *Config, v string) error {
			c.ConsoleScopes = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
			return nil
		}},
	{flag: "console-audience", env: "BROKER_CONSOLE_AUDIENCE", usage: "sent as audience and resource when the console signs in, for servers that need one to mint a token for the broker",
		bind: str(func(c *Config) *string { return &c.ConsoleAudience })},
}

// Names returns the environment variable of every setting the broker knows, in
// the order --help shows them. Deployment checks use it to prove that they set
// no variable the broker would ignore.
func Names() []string {
	names := make([]string, len(settings))
	for i, s := range settings {
		names[i] = s.env
	}
	return names
}

// Usage writes the list of settings with their environment variables and
// defaults. It never shows a secret's value: secrets have no default, and values
// taken from the environment are not shown.
func Usage(w io.Writer, command string) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\nEach flag can also be set by its environment variable; a flag on the command line wins.\n\n", command)
	for _, s := range settings {
		def := ""
		if s.def != "" {
			def = fmt.Sprintf(" (default %q)", s.def)
		}
		fmt.Fprintf(w, "  --%s, %s\n        %s%s\n", s.flag, s.env, s.usage, def)
	}
}

// Parse reads settings from defaults, then from getenv, then from args (flags),
// and validates the result. The error names every setting that is missing or
// malformed, on one line, and never contains a secret. flag.ErrHelp is returned
// when args ask for help.
func Parse(args []string, getenv func(string) string) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	values := make(map[string]*flagValue, len(settings))
	for _, s := range settings {
		values[s.flag] = &flagValue{text: s.def, boolean: s.boolean}
		fs.Var(values[s.flag], s.flag, s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("invalid configuration: %w", err)
	}
	if fs.NArg() > 0 {
		if _, err := strconv.ParseBool(fs.Arg(0)); err == nil {
			return c, fmt.Errorf("invalid configuration: unexpected argument %q (a true or false flag takes its value after =, like --dynamodb-create-table=%s)", fs.Arg(0), fs.Arg(0))
		}
		return c, fmt.Errorf("invalid configuration: unexpected argument %q", fs.Arg(0))
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	var p problems
	for _, s := range settings {
		v := values[s.flag].text
		if !onCommandLine[s.flag] {
			if ev, ok := lookup(getenv, s.env); ok {
				v = ev
			}
		}
		if err := s.bind(&c, v); err != nil {
			p = append(p, problem{env: s.env, msg: err.Error(), unreadable: true})
		}
	}
	if len(c.ConsoleScopes) == 0 {
		c.ConsoleScopes = []string{"openid", c.ScopeAdmin}
	}
	p = append(p, c.loadSkills(getenv)...)
	p = append(p, c.problems()...)
	if len(p) > 0 {
		return c, fmt.Errorf("invalid configuration: %s", p.join(func(env string) string {
			if s, ok := settingOf(env); ok && onCommandLine[s.flag] {
				return "--" + s.flag
			}
			return env
		}))
	}
	return c, nil
}

// settingOf returns the setting whose environment variable is env.
func settingOf(env string) (setting, bool) {
	for _, s := range settings {
		if s.env == env {
			return s, true
		}
	}
	return setting{}, false
}

// problem is one thing wrong with one setting, which env names by its
// environment variable; unreadable says that its value could not be read at
// all. msg never holds a secret value.
type problem struct {
	env, msg   string
	unreadable bool
}

// problems lists what is wrong with a configuration, in the order found.
type problems []problem

// add appends a problem of the setting env.
func (p *problems) add(env, format string, args ...any) {
	*p = append(*p, problem{env: env, msg: fmt.Sprintf(format, args...)})
}

// join writes the problems on one line, one entry a setting, named by name
// (its flag when it was given on the command line, else env). The first
// problem of a setting leads its entry, and a setting's later problems join
// it, but a value that could not be read at all (the first problem) is the
// setting's only problem: what validation then finds is its consequence.
func (p problems) join(name func(env string) string) string {
	var order []string
	byEnv := map[string][]string{}
	unreadable := map[string]bool{}
	for _, pr := range p {
		msgs, seen := byEnv[pr.env]
		switch {
		case !seen:
			order = append(order, pr.env)
			unreadable[pr.env] = pr.unreadable
		case unreadable[pr.env] || slices.Contains(msgs, pr.msg):
			continue
		}
		byEnv[pr.env] = append(msgs, pr.msg)
	}
	entries := make([]string, len(order))
	for i, env := range order {
		entries[i] = name(env) + ": " + strings.Join(byEnv[env], ", and ")
	}
	return strings.Join(entries, "; ")
}

// skillsFileEnv is the setting that names the skills file.
const skillsFileEnv = "BROKER_SKILLS_FILE"

// loadSkills fills c.Skills: from the skills file when BROKER_SKILLS_FILE is
// set (its env:NAME secrets read with getenv), else one skill named
// skills.Default from the single-skill settings, which problems checks. It
// returns the file's problems, as one problem of BROKER_SKILLS_FILE.
func (c *Config) loadSkills(getenv func(string) string) problems {
	c.Skills = nil
	if c.SkillsFile == "" {
		c.Skills = []skills.Skill{{
			ID:              skills.Default,
			LWAClientID:     c.LWAClientID,
			LWAClientSecret: c.LWAClientSecret,
			AlexaClientIDs:  slices.Clone(c.AlexaClientIDs),
			Region:          c.AlexaRegion,
		}}
		return nil
	}
	list, err := skills.Load(c.SkillsFile, getenv)
	if err != nil {
		// skills.Load names the setting first, as Parse will.
		return problems{{env: skillsFileEnv, msg: strings.TrimPrefix(err.Error(), skillsFileEnv+": ")}}
	}
	c.Skills = list
	return nil
}

// skillProblems lists what is wrong with the skills' settings: without a
// skills file, a missing single-skill setting; with one, each single-skill
// setting that is set beside it. (The file's own problems are found when
// Parse reads it.)
func (c *Config) skillProblems() problems {
	var p problems
	add := p.add
	if c.SkillsFile != "" {
		for _, s := range []struct {
			env string
			set bool
		}{
			{"BROKER_LWA_CLIENT_ID", c.LWAClientID != ""},
			{"BROKER_LWA_CLIENT_SECRET", c.LWAClientSecret != ""},
			{"BROKER_ALEXA_CLIENT_IDS", len(c.AlexaClientIDs) > 0},
			{"BROKER_ALEXA_REGION", c.AlexaRegion != ""},
		} {
			if s.set {
				add(s.env, "must stay unset with %s", skillsFileEnv)
			}
		}
		return p
	}
	if c.LWAClientID == "" {
		add("BROKER_LWA_CLIENT_ID", "required")
	}
	if c.LWAClientSecret == "" {
		add("BROKER_LWA_CLIENT_SECRET", "required")
	}
	if len(c.AlexaClientIDs) == 0 {
		add("BROKER_ALEXA_CLIENT_IDS", "required")
	}
	return p
}

// alexaClientIDs returns the Alexa client ids of every skill, each once; before
// Parse fills Skills, those of BROKER_ALEXA_CLIENT_IDS.
func (c *Config) alexaClientIDs() []string {
	if len(c.Skills) == 0 {
		return c.AlexaClientIDs
	}
	var ids []string
	for _, s := range c.Skills {
		for _, id := range s.AlexaClientIDs {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// lookup returns the value of an environment variable that is set and not empty.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// Environ returns getenv for Parse that reads the process environment.
func Environ() func(string) string { return os.Getenv }

var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// Validate returns an error naming every setting that is missing or malformed.
// It does not read the skills file: Parse does, and fills Skills.
func (c *Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return fmt.Errorf("invalid configuration: %s", p.join(func(env string) string { return env }))
	}
	return nil
}

// problems lists what is wrong with c, each problem naming its setting by its
// environment variable (a setting may have several). They never contain
// secret values.
func (c *Config) problems() problems {
	var p problems
	add := p.add

	for _, a := range []struct{ env, addr string }{{"BROKER_GRPC_ADDR", c.GRPCAddr}, {"BROKER_HTTP_ADDR", c.HTTPAddr}} {
		env := a.env
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			add(env, "not a host:port address")
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add(env, "port must be a number from 0 to 65535")
		}
	}
	if c.GRPCAddr == c.HTTPAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
		add("BROKER_HTTP_ADDR", "must differ from BROKER_GRPC_ADDR")
	}

	switch kind, target := c.StoreKind, c.StoreTarget; {
	case kind == "bolt" && target != "":
	case kind == "dynamodb" && tableName.MatchString(target):
	case kind == "dynamodb":
		add("BROKER_STORE", "DynamoDB table name must be 3 to 255 letters, digits, '_', '-' or '.'")
	default:
		add("BROKER_STORE", "must be bolt:PATH or dynamodb:TABLE")
	}
	if c.DynamoDBEndpoint != "" && !isHTTPURL(c.DynamoDBEndpoint) {
		add("BROKER_DYNAMODB_ENDPOINT", "not an http(s) URL")
	}
	if c.KMSEndpoint != "" && !isHTTPURL(c.KMSEndpoint) {
		add("BROKER_KMS_ENDPOINT", "not an http(s) URL")
	}

	p = append(p, c.skillProblems()...)
	if !isHTTPURL(c.LWATokenURL) {
		add("BROKER_LWA_TOKEN_URL", "not an http(s) URL")
	}
	if !isHTTPURL(c.AlexaAPIURL) {
		add("BROKER_ALEXA_API_URL", "not an http(s) URL")
	}

	if c.JWTIssuer == "" {
		add("BROKER_JWT_ISSUER", "required")
	}
	p = append(p, c.profileProblems()...)
	sources := 0
	if c.JWTJWKSURL != "" {
		sources++
		if !isHTTPURL(c.JWTJWKSURL) {
			add("BROKER_JWT_JWKS_URL", "not an http(s) URL")
		}
	}
	if c.JWTPublicKeyFile != "" {
		sources++
		if _, err := os.ReadFile(c.JWTPublicKeyFile); err != nil {
			add("BROKER_JWT_PUBLIC_KEY_FILE", "cannot read %q: %v", c.JWTPublicKeyFile, reason(err))
		}
	}
	if c.JWTHS256Secret != "" {
		sources++
		if len(c.JWTHS256Secret.Reveal()) < 32 {
			add("BROKER_JWT_HS256_SECRET", "must be at least 32 bytes")
		}
	}
	if sources != 1 {
		add("BROKER_JWT_JWKS_URL", "exactly one of BROKER_JWT_JWKS_URL, BROKER_JWT_PUBLIC_KEY_FILE or BROKER_JWT_HS256_SECRET is required")
	}

	if c.EncryptionKey == "" {
		add("BROKER_ENCRYPTION_KEY", "required: base64 of 32 random bytes, or kms:KEY_ID (%s)", makeKey)
	}
	malformed := false
	for i, key := range c.EncryptionKeys() {
		switch id, kms := strings.CutPrefix(key, kmsKeyPrefix); {
		case key == "":
			add("BROKER_ENCRYPTION_KEY", "key %d of the list is empty", i+1)
		case kms && id == "":
			add("BROKER_ENCRYPTION_KEY", "key %d of the list: kms: needs a key id", i+1)
		case kms:
		default:
			switch b, err := base64.StdEncoding.DecodeString(key); {
			case err != nil:
				add("BROKER_ENCRYPTION_KEY", "key %d of the list must be base64 of 32 bytes, or kms:KEY_ID (it is not standard base64)", i+1)
				malformed = true
			case len(b) != 32:
				add("BROKER_ENCRYPTION_KEY", "key %d of the list must be base64 of 32 bytes, or kms:KEY_ID (it decodes to %d bytes)", i+1, len(b))
				malformed = true
			}
		}
	}
	if malformed {
		add("BROKER_ENCRYPTION_KEY", "%s", makeKey)
	}
	if c.ResealRate < 0 {
		add("BROKER_RESEAL_RATE", "must not be negative")
	}

	if c.RefreshAhead <= 0 || c.RefreshAhead > time.Hour {
		add("BROKER_REFRESH_AHEAD", "must be more than 0 and at most 1h")
	}
	if c.BackgroundRefresh < 0 {
		add("BROKER_BACKGROUND_REFRESH", "must not be negative")
	}
	switch c.AlexaRegion {
	case "", "NA", "EU", "FE":
	default:
		add("BROKER_ALEXA_REGION", "must be NA, EU or FE")
	}
	if c.ReportDeadline <= 0 {
		add("BROKER_REPORT_DEADLINE", "must be more than 0")
	}
	if c.ReportRetention <= 0 {
		add("BROKER_REPORT_RETENTION", "must be more than 0")
	}
	if c.EventRetention <= 0 {
		add("BROKER_EVENT_RETENTION", "must be more than 0")
	}
	p = append(p, c.webhookProblems()...)
	p = append(p, c.consoleProblems()...)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("BROKER_LOG_LEVEL", "must be debug, info, warn or error")
	}
	return p
}

// webhookProblems lists what is wrong with the webhook settings: a URL that is
// not http(s), a URL without a valid secret (so that it never receives an
// unsigned request), an unknown event type, a deadline that is not positive.
// They never contain the secret.
func (c *Config) webhookProblems() problems {
	var p problems
	add := p.add
	if c.WebhookURL != "" && !isHTTPURL(c.WebhookURL) {
		add("BROKER_WEBHOOK_URL", "not an http(s) URL")
	}
	switch _, err := events.NewSigner(c.WebhookSecret); {
	case c.WebhookSecret == "" && c.WebhookURL != "":
		add("BROKER_WEBHOOK_SECRET", "required with BROKER_WEBHOOK_URL")
	case c.WebhookSecret != "" && err != nil:
		add("BROKER_WEBHOOK_SECRET", "%v", err)
	}
	if len(c.WebhookEvents) == 0 {
		add("BROKER_WEBHOOK_EVENTS", "must name at least one event type")
	}
	for _, t := range c.WebhookEvents {
		if t.Validate() != nil {
			add("BROKER_WEBHOOK_EVENTS", "unknown event type %q; known: %s", string(t), joinTypes(tokens.EventTypes))
			break
		}
	}
	if c.WebhookDeadline <= 0 {
		add("BROKER_WEBHOOK_DEADLINE", "must be more than 0")
	}
	return p
}

// consoleProblems lists what is wrong with the console's settings: a public
// URL that is not an http(s) URL without query or fragment, and, with the
// console on, an issuer that is no http(s) URL, for the console finds the
// authorization server at BROKER_JWT_ISSUER + /.well-known/openid-configuration.
func (c *Config) consoleProblems() problems {
	var p problems
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || !isHTTPURL(c.PublicURL) || u.RawQuery != "" || u.Fragment != "" {
			p.add("BROKER_PUBLIC_URL", "not an http(s) URL without query or fragment")
		}
	}
	if c.ConsoleClientID != "" && c.JWTIssuer != "" && !isHTTPURL(c.JWTIssuer) {
		p.add("BROKER_CONSOLE_CLIENT_ID", "the console finds the authorization server at BROKER_JWT_ISSUER + /.well-known/openid-configuration; the issuer must be an http(s) URL")
	}
	return p
}

// joinTypes writes types as a comma list.
func joinTypes(types []tokens.EventType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return strings.Join(names, ",")
}

// profileProblems lists what is wrong with the claim profile, the settings
// that refine it, and the scope names: an unknown profile, a client or scope
// claim that cannot be one, aud or a client list missing where the profile
// needs it, a client list without the Alexa clients of every skill, and scope
// names that are empty, hold spaces or grant two rights at once.
func (c *Config) profileProblems() problems {
	var p problems
	add := p.add

	profile, ok := auth.LookupProfile(c.JWTProfile)
	if !ok {
		add("BROKER_JWT_PROFILE", "unknown profile %q; want one of %s", c.JWTProfile, strings.Join(auth.ProfileNames(), ", "))
	}
	switch {
	case ok && profile.NoAudience && len(c.JWTClients) == 0:
		add("BROKER_JWT_CLIENTS", "required with BROKER_JWT_PROFILE=%s, whose access tokens carry no aud", profile.Name)
	case ok && !profile.NoAudience && c.JWTAudience == "":
		add("BROKER_JWT_AUDIENCE", "required")
	}
	if c.JWTClientClaim != "" {
		if err := auth.CheckClaimName(c.JWTClientClaim); err != nil {
			add("BROKER_JWT_CLIENT_CLAIM", "%v", err)
		}
	}
	for _, name := range c.JWTScopeClaims {
		if err := auth.CheckClaimName(name); err != nil {
			add("BROKER_JWT_SCOPE_CLAIMS", "%v", err)
			break
		}
	}
	if len(c.JWTClients) > 0 {
		var missing []string
		for _, id := range c.alexaClientIDs() {
			if !slices.Contains(c.JWTClients, id) {
				missing = append(missing, id)
			}
		}
		source := "BROKER_ALEXA_CLIENT_IDS"
		if c.SkillsFile != "" {
			source = "every skill of " + skillsFileEnv
		}
		if len(missing) > 0 {
			add("BROKER_JWT_CLIENTS", "must include Alexa's clients of %s, or no hand-over is accepted (missing %s)", source, strings.Join(missing, ", "))
		}
	}
	if c.JWTJWKSRefresh < 10*time.Second || c.JWTJWKSRefresh > 24*time.Hour {
		add("BROKER_JWT_JWKS_REFRESH", "must be from 10s to 24h")
	}

	seen := map[string]string{}
	for _, s := range []struct{ env, name string }{
		{"BROKER_SCOPE_TOKENS", c.ScopeTokens}, {"BROKER_SCOPE_PROFILES", c.ScopeProfiles},
		{"BROKER_SCOPE_ADMIN", c.ScopeAdmin}, {"BROKER_SCOPE_EVENTS", c.ScopeEvents},
	} {
		switch first, dup := seen[s.name]; {
		case s.name == "":
			add(s.env, "must not be empty")
		case strings.ContainsFunc(s.name, unicode.IsSpace):
			add(s.env, "must be one scope name, without spaces")
		case dup:
			add(s.env, "must differ from %s: one name would grant both rights", first)
		default:
			seen[s.name] = s.env
		}
	}
	return p
}

// KMSKeyID returns the AWS KMS key id of the first encryption key when it is
// kms:KEY_ID, and false when it is a static key (base64 of 32 bytes).
func (c *Config) KMSKeyID() (string, bool) {
	keys := c.EncryptionKeys()
	if len(keys) == 0 {
		return "", false
	}
	if id, ok := strings.CutPrefix(keys[0], kmsKeyPrefix); ok {
		return id, true
	}
	return "", false
}

// EncryptionKeys returns the keys of BROKER_ENCRYPTION_KEY's comma list in
// order, each trimmed of white space: the first seals, every one opens. Each is
// base64 of 32 bytes or "kms:KEY_ID"; an empty item is kept, for Validate to
// name. The result holds secrets: it must never be logged.
func (c *Config) EncryptionKeys() []string {
	v := c.EncryptionKey.Reveal()
	if v == "" {
		return nil
	}
	keys := strings.Split(v, ",")
	for i := range keys {
		keys[i] = strings.TrimSpace(keys[i])
	}
	return keys
}

// kmsKeyPrefix marks a BROKER_ENCRYPTION_KEY that names an AWS KMS key.
const kmsKeyPrefix = "kms:"

// makeKey says how to make a sealing key, for the errors of a missing or
// malformed one.
const makeKey = "to make a key: head -c 32 /dev/urandom | base64"

// reason returns what went wrong of a file system error, without the
// operation and path that *fs.PathError adds (the caller names the path).
func reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
