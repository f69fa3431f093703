package cloudformation_test

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// stack is a template as CloudFormation makes it from given parameter values:
// every condition decided, every !If replaced by the value its condition
// picks, AWS::NoValue dropped, resources whose condition is false left out,
// and every !Ref to a parameter (and a !Sub made of parameters only) replaced
// by its value.
type stack struct {
	file   string
	params map[string]string // every parameter's value, and the pseudo parameters'
	lists  map[string]bool   // the parameters whose value is a list (comma-separated in params)
	nums   map[string]bool   // the parameters whose value is a number
	root   *yaml.Node        // the template as given
	conds  map[string]bool
	doc    *yaml.Node // the template as made: root with Resources resolved
}

// pseudoParameters are the values of CloudFormation's pseudo parameters in
// the tests.
var pseudoParameters = map[string]string{
	"AWS::AccountId": "123456789012",
	"AWS::Partition": "aws",
	"AWS::Region":    "eu-west-1",
	"AWS::StackName": "reciprocal-broker",
	"AWS::URLSuffix": "amazonaws.com",
}

// deploy returns the template file as CloudFormation makes it with the given
// parameter values (the others keep their defaults). It fails the test on a
// name that is not a parameter of the template; values the template refuses
// are reported by refusals.
func deploy(tb testing.TB, file string, given map[string]string) *stack {
	tb.Helper()
	s := &stack{file: file, params: maps.Clone(pseudoParameters), lists: map[string]bool{}, nums: map[string]bool{}, root: parse(tb, file), conds: map[string]bool{}}
	params := get(s.root, "Parameters")
	for i := 0; params != nil && i+1 < len(params.Content); i += 2 {
		name, p := params.Content[i].Value, params.Content[i+1]
		if def := get(p, "Default"); def != nil {
			s.params[name] = def.Value
		}
		typ := scalar(get(p, "Type"))
		s.lists[name] = strings.HasPrefix(typ, "List<") || typ == "CommaDelimitedList"
		s.nums[name] = typ == "Number"
	}
	for name, v := range given {
		if get(params, name) == nil {
			tb.Fatalf("%s has no parameter %s", file, name)
		}
		s.params[name] = v
	}
	if conds := get(s.root, "Conditions"); conds != nil {
		for i := 0; i+1 < len(conds.Content); i += 2 {
			s.condition(tb, conds.Content[i].Value)
		}
	}

	doc := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(s.root.Content); i += 2 {
		key, value := s.root.Content[i], s.root.Content[i+1]
		if key.Value == "Resources" {
			res := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for j := 0; j+1 < len(value.Content); j += 2 {
				if c := scalar(get(value.Content[j+1], "Condition")); c != "" && !s.condition(tb, c) {
					continue
				}
				if r, ok := s.resolve(tb, value.Content[j+1]); ok {
					res.Content = append(res.Content, value.Content[j], r)
				}
			}
			value = res
		}
		doc.Content = append(doc.Content, key, value)
	}
	s.doc = doc
	return s
}

// resource returns the properties of the named resource, or nil when the
// stack does not make it.
func (s *stack) resource(name string) *yaml.Node {
	r := get(s.doc, "Resources", name)
	if r == nil {
		return nil
	}
	return get(r, "Properties")
}

// call splits an intrinsic function, in its short (!Equals [a, b]) or full
// ({Fn::Equals: [a, b]}) form, into its name (Fn::Equals, Ref, Condition)
// and its argument; ok is false when n is no function.
func call(n *yaml.Node) (name string, arg *yaml.Node, ok bool) {
	if n == nil {
		return "", nil, false
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name = n.Tag[1:]
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		arg := *n
		arg.Tag = ""
		return name, &arg, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		if k := n.Content[0].Value; k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, n.Content[1], true
		}
	}
	return "", nil, false
}

// condition returns the value of the named condition of the Conditions section.
func (s *stack) condition(tb testing.TB, name string) bool {
	tb.Helper()
	if v, ok := s.conds[name]; ok {
		return v
	}
	def := get(s.root, "Conditions", name)
	if def == nil {
		tb.Fatalf("%s: no condition %s", s.file, name)
	}
	v := s.truth(tb, def)
	s.conds[name] = v
	return v
}

// truth evaluates a condition function (Fn::Equals, Fn::Not, Fn::And,
// Fn::Or, Condition), as the Conditions and Rules sections use them.
func (s *stack) truth(tb testing.TB, n *yaml.Node) bool {
	tb.Helper()
	name, arg, ok := call(n)
	if !ok {
		tb.Fatalf("%s: %q (line %d) is not a condition", s.file, n.Value, n.Line)
	}
	switch name {
	case "Condition":
		return s.condition(tb, arg.Value)
	case "Fn::Equals":
		if len(arg.Content) != 2 {
			tb.Fatalf("%s: line %d: Fn::Equals takes two values", s.file, n.Line)
		}
		return s.value(tb, arg.Content[0]) == s.value(tb, arg.Content[1])
	case "Fn::Not":
		if len(arg.Content) != 1 {
			tb.Fatalf("%s: line %d: Fn::Not takes one condition", s.file, n.Line)
		}
		return !s.truth(tb, arg.Content[0])
	case "Fn::And", "Fn::Or":
		if len(arg.Content) < 2 || len(arg.Content) > 10 {
			tb.Fatalf("%s: line %d: %s takes 2 to 10 conditions", s.file, n.Line, name)
		}
		all, any := true, false
		for _, c := range arg.Content {
			v := s.truth(tb, c)
			all, any = all && v, any || v
		}
		if name == "Fn::And" {
			return all
		}
		return any
	}
	tb.Fatalf("%s: line %d: %s in a condition is not evaluated by these tests", s.file, n.Line, name)
	return false
}

// value returns a plain value or a parameter's, for Fn::Equals.
func (s *stack) value(tb testing.TB, n *yaml.Node) string {
	tb.Helper()
	if name, arg, ok := call(n); ok {
		v, known := s.params[arg.Value]
		if name != "Ref" || !known {
			tb.Fatalf("%s: line %d: %s %s is not a parameter's value", s.file, n.Line, name, arg.Value)
		}
		return v
	}
	return n.Value
}

// subVariable matches a ${Name} of a !Sub string (not ${!Literal}).
var subVariable = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// resolve returns n as CloudFormation makes it (see stack), and false when n
// is AWS::NoValue or an !If that picks it.
func (s *stack) resolve(tb testing.TB, n *yaml.Node) (*yaml.Node, bool) {
	tb.Helper()
	if name, arg, isCall := call(n); isCall {
		switch name {
		case "Fn::If":
			if len(arg.Content) != 3 {
				tb.Fatalf("%s: line %d: Fn::If takes a condition and two values", s.file, n.Line)
			}
			if s.condition(tb, arg.Content[0].Value) {
				return s.resolve(tb, arg.Content[1])
			}
			return s.resolve(tb, arg.Content[2])
		case "Ref":
			if arg.Value == "AWS::NoValue" {
				return nil, false
			}
			if v, known := s.params[arg.Value]; known && s.lists[arg.Value] {
				list := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
				for _, e := range strings.Split(v, ",") {
					list.Content = append(list.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: e})
				}
				return list, true
			} else if known && s.nums[arg.Value] {
				return &yaml.Node{Kind: yaml.ScalarNode, Value: v}, true
			} else if known {
				return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}, true
			}
		case "Fn::Sub":
			if arg.Kind == yaml.ScalarNode {
				known := true
				v := subVariable.ReplaceAllStringFunc(arg.Value, func(m string) string {
					name := m[2 : len(m)-1]
					p, ok := s.params[name]
					known = known && ok && !s.lists[name]
					return p
				})
				if known {
					return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}, true
				}
			}
		}
	}
	out := *n
	out.Content = nil
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if r, ok := s.resolve(tb, c); ok {
				out.Content = append(out.Content, r)
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if r, ok := s.resolve(tb, n.Content[i+1]); ok {
				out.Content = append(out.Content, n.Content[i], r)
			}
		}
	}
	return &out, true
}

// refusals returns why CloudFormation would refuse the parameter values: a
// value outside a parameter's AllowedValues or AllowedPattern, and each rule
// whose RuleCondition holds and one of whose assertions does not. None means
// the stack would be made.
func (s *stack) refusals(tb testing.TB) []string {
	tb.Helper()
	var out []string
	params := get(s.root, "Parameters")
	for i := 0; params != nil && i+1 < len(params.Content); i += 2 {
		name, p := params.Content[i].Value, params.Content[i+1]
		v := s.params[name]
		if allowed := get(p, "AllowedValues"); allowed != nil {
			var values []string
			for _, a := range allowed.Content {
				values = append(values, a.Value)
			}
			if !slices.Contains(values, v) {
				out = append(out, fmt.Sprintf("parameter %s: %q is not one of %q", name, v, values))
			}
		}
		if pattern := scalar(get(p, "AllowedPattern")); pattern != "" {
			if !regexp.MustCompile(`^(?:` + pattern + `)$`).MatchString(v) {
				out = append(out, fmt.Sprintf("parameter %s: %q does not match %s", name, v, pattern))
			}
		}
	}
	rules := get(s.root, "Rules")
	for i := 0; rules != nil && i+1 < len(rules.Content); i += 2 {
		name, r := rules.Content[i].Value, rules.Content[i+1]
		if c := get(r, "RuleCondition"); c != nil && !s.truth(tb, c) {
			continue
		}
		for _, a := range items(get(r, "Assertions")) {
			if !s.truth(tb, get(a, "Assert")) {
				out = append(out, fmt.Sprintf("rule %s: %s", name, scalar(get(a, "AssertDescription"))))
			}
		}
	}
	return out
}

// container returns the task definition's container of that name, or nil.
func container(taskDef *yaml.Node, name string) *yaml.Node {
	for _, c := range items(get(taskDef, "ContainerDefinitions")) {
		if scalar(get(c, "Name")) == name {
			return c
		}
	}
	return nil
}

// namedValues returns a container's Environment (key Value) or Secrets (key
// ValueFrom) by name, and the names given more than once.
func namedValues(c *yaml.Node, list, key string) (values map[string]*yaml.Node, twice []string) {
	values = map[string]*yaml.Node{}
	for _, e := range items(get(c, list)) {
		name := scalar(get(e, "Name"))
		if _, ok := values[name]; ok {
			twice = append(twice, name)
		}
		values[name] = get(e, key)
	}
	return values, twice
}

// statements returns the statements of a role's inline policies by Sid.
func statements(role *yaml.Node) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for _, p := range items(get(role, "Policies")) {
		for _, st := range items(get(p, "PolicyDocument", "Statement")) {
			out[scalar(get(st, "Sid"))] = st
		}
	}
	return out
}

// strs returns the plain values of a single value or a list.
func strs(n *yaml.Node) []string {
	var out []string
	for _, v := range values(n) {
		out = append(out, scalar(v))
	}
	return out
}
