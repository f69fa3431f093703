package skills

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// setting is the setting that names the skills file; every error of Load
// starts with it.
const setting = "BROKER_SKILLS_FILE"

// Field names of a skill in the file.
const (
	fieldID              = "id"
	fieldLWAClientID     = "lwa_client_id"
	fieldLWAClientSecret = "lwa_client_secret"
	fieldAlexaClientIDs  = "alexa_client_ids"
	fieldRegion          = "region"
)

// Prefixes of a secret reference.
const (
	envPrefix  = "env:"
	filePrefix = "file:"
)

// file is the skills file as written. Each field of a skill is kept as its
// YAML node: Load checks its kind itself, so that a problem names the field,
// and a value (a secret written where it does not belong) never reaches an
// error message through the YAML decoder's own.
type file struct {
	Skills []entry `yaml:"skills"`
}

// entry is one skill of the file.
type entry struct {
	ID              yaml.Node `yaml:"id"`
	LWAClientID     yaml.Node `yaml:"lwa_client_id"`
	LWAClientSecret yaml.Node `yaml:"lwa_client_secret"`
	AlexaClientIDs  yaml.Node `yaml:"alexa_client_ids"`
	Region          yaml.Node `yaml:"region"`
}

// Load reads the skills file at path, the value of BROKER_SKILLS_FILE:
//
//	skills:
//	  - id: baby
//	    lwa_client_id: amzn1.application-oa2-client.aaa
//	    lwa_client_secret: env:BABY_LWA_SECRET
//	    alexa_client_ids: [alexa-baby]
//	    region: NA
//
// It returns the skills in the file's order. Each id is 1 to 32 lowercase
// letters, digits or '-', and unique; lwa_client_id is required;
// lwa_client_secret is a reference, env:NAME (the variable, read with getenv,
// must be set and not empty) or file:PATH (the file is read now, its
// surrounding white space trimmed, and must not be empty): a literal secret is
// refused. alexa_client_ids lists at least one client id, and an Alexa client
// id belongs to one skill only; region is NA, EU or FE, or absent. The file
// must list at least one skill, and holds no other key.
//
// The error, on one line, starts with BROKER_SKILLS_FILE and path and names
// every problem found: each names the skill (by its place in the file and its
// id) and the field. It never contains a secret, whether written in the file,
// held by a variable or read from a file.
func Load(path string, getenv func(string) string) ([]Skill, error) {
	fail := func(problems []string) error {
		return fmt.Errorf("%s: %s: %s", setting, path, strings.Join(problems, "; "))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail([]string{"cannot read the file: " + reason(err)})
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var problems []string
	switch err := dec.Decode(&f); {
	case errors.Is(err, io.EOF):
		return nil, fail([]string{"the file is empty: it must list at least one skill under skills"})
	case err != nil:
		var shaped bool
		problems, shaped = decodeProblems(err)
		if !shaped {
			// The skills decoded may be missing some of the file's, so
			// their numbers cannot be trusted: report the shape first.
			return nil, fail(problems)
		}
	}
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		problems = append(problems, "the file must hold one YAML document")
	}
	if len(f.Skills) == 0 {
		problems = append(problems, "skills: at least one skill is required")
	}
	list, skillProblems := check(f.Skills, getenv)
	if problems = append(problems, skillProblems...); len(problems) > 0 {
		return nil, fail(problems)
	}
	return list, nil
}

// check turns the file's entries into skills, and lists every problem of them.
func check(entries []entry, getenv func(string) string) ([]Skill, []string) {
	var problems []string
	list := make([]Skill, len(entries))
	ids := map[string]int{}     // skill id → index of its first skill
	clients := map[string]int{} // Alexa client id → index of its skill
	for i, e := range entries {
		s := &list[i]
		id, idOK := scalar(e.ID)
		s.ID = strings.TrimSpace(id)
		name := label(i, s.ID)
		add := func(field string, n yaml.Node, format string, args ...any) {
			msg := name + ": " + field + ": " + fmt.Sprintf(format, args...)
			if n.Line > 0 {
				msg += fmt.Sprintf(" (line %d)", n.Line)
			}
			problems = append(problems, msg)
		}

		switch first, dup := ids[s.ID]; {
		case !idOK:
			add(fieldID, e.ID, "must be a string")
		case s.ID == "":
			add(fieldID, e.ID, "required")
		case !validID(s.ID):
			add(fieldID, e.ID, "%q must be 1 to 32 lowercase letters, digits or '-'", s.ID)
		case dup:
			add(fieldID, e.ID, "%q is also the id of %s", s.ID, label(first, s.ID))
		default:
			ids[s.ID] = i
		}

		clientID, ok := scalar(e.LWAClientID)
		s.LWAClientID = strings.TrimSpace(clientID)
		switch {
		case !ok:
			add(fieldLWAClientID, e.LWAClientID, "must be a string")
		case s.LWAClientID == "":
			add(fieldLWAClientID, e.LWAClientID, "required")
		}

		secret, problem := resolveSecret(e.LWAClientSecret, getenv)
		if problem != "" {
			add(fieldLWAClientSecret, e.LWAClientSecret, "%s", problem)
		}
		s.LWAClientSecret = secret

		items, ok := sequence(e.AlexaClientIDs)
		switch {
		case !ok:
			add(fieldAlexaClientIDs, e.AlexaClientIDs, "must be a list of client ids")
		case len(items) == 0:
			add(fieldAlexaClientIDs, e.AlexaClientIDs, "required: at least one client id")
		}
		for j, item := range items {
			v, ok := scalar(item)
			v = strings.TrimSpace(v)
			if !ok || v == "" {
				add(fieldAlexaClientIDs, item, "item %d must be a client id, not empty", j+1)
				continue
			}
			switch owner, taken := clients[v]; {
			case taken && owner == i:
				add(fieldAlexaClientIDs, item, "%q is listed twice", v)
			case taken:
				add(fieldAlexaClientIDs, item, "%q also belongs to %s: an Alexa client id may belong to only one skill", v, label(owner, list[owner].ID))
			default:
				clients[v] = i
				s.AlexaClientIDs = append(s.AlexaClientIDs, v)
			}
		}

		region, ok := scalar(e.Region)
		s.Region = region
		switch {
		case !ok:
			add(fieldRegion, e.Region, "must be NA, EU or FE")
		case !validRegion(region):
			add(fieldRegion, e.Region, "%q must be NA, EU or FE", region)
		}
	}
	return list, problems
}

// label names the skill at index i of the file, for error messages.
func label(i int, id string) string {
	if id == "" {
		return fmt.Sprintf("skill %d (no id)", i+1)
	}
	return fmt.Sprintf("skill %d (%q)", i+1, id)
}

// envName is the form of an environment variable's name in an env: reference.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// resolveSecret returns the secret that the reference n names, or the problem
// with it. The problem never holds the value of n unless it is a reference,
// and never the secret.
func resolveSecret(n yaml.Node, getenv func(string) string) (tokens.Secret, string) {
	ref, ok := scalar(n)
	if !ok {
		return "", "must be env:NAME or file:PATH"
	}
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return "", "required: env:NAME or file:PATH"
	}
	if name, ok := strings.CutPrefix(ref, envPrefix); ok {
		if !envName.MatchString(name) {
			return "", "env: must be followed by the name of an environment variable"
		}
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return "", fmt.Sprintf("env:%s: the environment variable %s is unset or empty", name, name)
		}
		return tokens.Secret(v), ""
	}
	if path, ok := strings.CutPrefix(ref, filePrefix); ok {
		if path == "" {
			return "", "file: must be followed by the path of a file"
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Sprintf("cannot read file:%s: %s", path, reason(err))
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Sprintf("file:%s is empty", path)
		}
		return tokens.Secret(v), ""
	}
	return "", "a literal secret is refused; use env:NAME or file:PATH"
}

// reason returns why a file could not be read, without its path (which the
// caller names).
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// scalar returns the text of a scalar node, following an alias; a node that is
// absent or null is "". ok is false for a list or a mapping.
func scalar(n yaml.Node) (string, bool) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = *n.Alias
	}
	switch {
	case n.Kind == 0:
		return "", true
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return "", true
	case n.Kind == yaml.ScalarNode:
		return n.Value, true
	}
	return "", false
}

// sequence returns the items of a list node, following an alias; a node that
// is absent or null has none. ok is false for a scalar or a mapping.
func sequence(n yaml.Node) ([]yaml.Node, bool) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = *n.Alias
	}
	switch {
	case n.Kind == 0:
		return nil, true
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return nil, true
	case n.Kind == yaml.SequenceNode:
		items := make([]yaml.Node, len(n.Content))
		for i, c := range n.Content {
			items[i] = *c
		}
		return items, true
	}
	return nil, false
}

// The YAML decoder's messages that Load rewrites: they name Go types, and a
// type error quotes the start of the value, which may be a secret.
var (
	unknownField = regexp.MustCompile(`^line (\d+): field (.*) not found in type (\S+)$`)
	wrongKind    = regexp.MustCompile(`^line (\d+): cannot unmarshal (\S+)(?: .*)? into (\S+)$`)
	quoted       = regexp.MustCompile("`[^`]*`")
)

// decodeProblems rewrites an error of the YAML decoder as problems that name
// the field and the line, and never quote a value. shaped reports whether the
// file still has the shape Load expects (only unknown keys were found), so
// that its skills can be checked as well. A key given twice in a mapping is
// a problem of shape: the decoder drops that mapping.
func decodeProblems(err error) (problems []string, shaped bool) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// A syntax error: its message names the line, never a value.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return []string{"not valid YAML: " + quoted.ReplaceAllString(msg, "…")}, false
	}
	shaped = true
	for _, e := range te.Errors {
		switch {
		case unknownField.MatchString(e):
			m := unknownField.FindStringSubmatch(e)
			problems = append(problems, fmt.Sprintf("line %s: unknown field %q %s", m[1], m[2], where(m[3])))
		case wrongKind.MatchString(e):
			m := wrongKind.FindStringSubmatch(e)
			problems = append(problems, fmt.Sprintf("line %s: %s", m[1], want(m[3])))
			shaped = false
		default:
			problems = append(problems, quoted.ReplaceAllString(e, "…"))
			shaped = false
		}
	}
	return problems, shaped
}

// where names the place of a field in the file from the Go type the decoder
// names, with the fields known there.
func where(goType string) string {
	switch goType {
	case "skills.entry":
		return fmt.Sprintf("in a skill (known: %s, %s, %s, %s, %s)", fieldID, fieldLWAClientID, fieldLWAClientSecret, fieldAlexaClientIDs, fieldRegion)
	case "skills.file":
		return "at the top of the file (known: skills)"
	}
	return ""
}

// want says what the file must hold where the decoder found the wrong kind
// of value, from the Go type it names.
func want(goType string) string {
	switch goType {
	case "skills.file":
		return "the file must be a mapping with the key skills"
	case "[]skills.entry":
		return "skills must be a list of skills"
	case "skills.entry":
		return "each skill must be a mapping of its fields"
	}
	return "unexpected value"
}
