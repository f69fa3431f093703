// Package cloudformation_test checks the CloudFormation templates of this
// directory against the code they deploy: the table is the one the DynamoDB
// store uses, the task definition sets only settings the broker knows, and no
// IAM or key policy allows a wildcard action on a wildcard resource; and
// (goformation_test.go) that goformation, which knows CloudFormation's resource
// types, parses them. scripts/test.sh runs cfn-lint in addition where it exists.
//
// The service stack is also made, as CloudFormation would make it, from
// several sets of parameters (stack_test.go decides its conditions): one
// skill, or a skills file from Secrets Manager or Parameter Store with the
// skills' secrets (skills_test.go).
//
// The templates use CloudFormation's short-form tags (!Ref, !Sub, !If, ...),
// so they are read as yaml.Node trees, which keep the tags, rather than
// decoded into Go values.
package cloudformation_test

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
)

// resource is one entry of a template's Resources.
type resource struct {
	file, name, typ string
	props           *yaml.Node
}

// loadResources parses every template of this directory and returns the
// resources of the given types.
func loadResources(tb testing.TB, types ...string) []resource {
	tb.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatal("no templates (*.yaml) in infra/cloudformation")
	}
	var found []resource
	for _, file := range files {
		root := parse(tb, file)
		res := get(root, "Resources")
		if res == nil || res.Kind != yaml.MappingNode {
			tb.Fatalf("%s: no Resources", file)
		}
		for i := 0; i+1 < len(res.Content); i += 2 {
			r := res.Content[i+1]
			if typ := scalar(get(r, "Type")); slices.Contains(types, typ) {
				found = append(found, resource{file: file, name: res.Content[i].Value, typ: typ, props: get(r, "Properties")})
			}
		}
	}
	return found
}

// parse returns the top-level mapping of the YAML file.
func parse(tb testing.TB, file string) *yaml.Node {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		tb.Fatalf("%s: %v", file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		tb.Fatalf("%s: not a YAML mapping", file)
	}
	return doc.Content[0]
}

// get follows keys through nested mappings; it returns nil when one is missing.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, key := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// scalar returns the value of a plain scalar (no intrinsic function), or "".
func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode || (strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!")) {
		return ""
	}
	return n.Value
}

// items returns the elements of a list, with each conditional element
// (!If [cond, a, b] or Fn::If) replaced by both of its branches and
// AWS::NoValue dropped: every element the list can have, whatever the
// parameters.
func items(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	var out []*yaml.Node
	for _, e := range n.Content {
		out = append(out, branches(e)...)
	}
	return out
}

// branches returns the values n can take: both branches of a condition, none
// for AWS::NoValue, else n itself.
func branches(n *yaml.Node) []*yaml.Node {
	switch {
	case n.Tag == "!Ref" && n.Value == "AWS::NoValue", scalar(get(n, "Ref")) == "AWS::NoValue":
		return nil
	case n.Tag == "!If" && n.Kind == yaml.SequenceNode && len(n.Content) == 3:
		return append(branches(n.Content[1]), branches(n.Content[2])...)
	case get(n, "Fn::If") != nil && len(get(n, "Fn::If").Content) == 3:
		c := get(n, "Fn::If").Content
		return append(branches(c[1]), branches(c[2])...)
	}
	return []*yaml.Node{n}
}

// text returns the string a value is made from: a plain scalar, or the
// template string of !Sub / Fn::Sub (without substitutions).
func text(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	if s := get(n, "Fn::Sub"); s != nil {
		n = s
	} else if n.Tag == "!Sub" {
		if n.Kind == yaml.ScalarNode {
			return n.Value
		}
	} else {
		return scalar(n)
	}
	if n.Kind == yaml.SequenceNode && len(n.Content) > 0 {
		return n.Content[0].Value
	}
	return n.Value
}

// keySchema returns a KeySchema as "name HASH", "name RANGE", in order.
func keySchema(n *yaml.Node) []string {
	var out []string
	for _, e := range items(n) {
		out = append(out, scalar(get(e, "AttributeName"))+" "+scalar(get(e, "KeyType")))
	}
	return out
}

func TestTable_MatchesDynamoStore(t *testing.T) {
	tables := loadResources(t, "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")
	if len(tables) != 1 {
		t.Fatalf("found %d DynamoDB tables in the templates, want 1", len(tables))
	}
	table := tables[0].props
	want := dynamo.CreateTableInput("unused")

	t.Run("Keys", func(t *testing.T) {
		if got, want := keySchema(get(table, "KeySchema")), []string{dynamo.AttrPK + " HASH", dynamo.AttrSK + " RANGE"}; !slices.Equal(got, want) {
			t.Errorf("KeySchema = %q, want %q", got, want)
		}
		var wantKeys []string
		for _, k := range want.KeySchema {
			wantKeys = append(wantKeys, *k.AttributeName+" "+string(k.KeyType))
		}
		if got := keySchema(get(table, "KeySchema")); !slices.Equal(got, wantKeys) {
			t.Errorf("KeySchema = %q, the store creates %q", got, wantKeys)
		}
		got := map[string]string{}
		for _, d := range items(get(table, "AttributeDefinitions")) {
			got[scalar(get(d, "AttributeName"))] = scalar(get(d, "AttributeType"))
		}
		wantDefs := map[string]string{}
		for _, d := range want.AttributeDefinitions {
			wantDefs[*d.AttributeName] = string(d.AttributeType)
		}
		for _, name := range []string{dynamo.AttrPK, dynamo.AttrSK, dynamo.AttrGSI1PK, dynamo.AttrGSI1SK} {
			if got[name] != "S" {
				t.Errorf("AttributeDefinitions: %s is %q, want S", name, got[name])
			}
		}
		if !maps.Equal(got, wantDefs) {
			t.Errorf("AttributeDefinitions = %v, the store creates %v", got, wantDefs)
		}
		if got, want := scalar(get(table, "BillingMode")), string(want.BillingMode); got != want {
			t.Errorf("BillingMode = %q, want %q (on demand)", got, want)
		}
	})

	t.Run("Index", func(t *testing.T) {
		gsis := items(get(table, "GlobalSecondaryIndexes"))
		if got, want := len(gsis), len(want.GlobalSecondaryIndexes); got != want {
			t.Fatalf("%d global secondary indexes, the store creates %d", got, want)
		}
		wantIndex := want.GlobalSecondaryIndexes[0]
		gsi := gsis[0]
		if got := scalar(get(gsi, "IndexName")); got != dynamo.IndexGSI1 || got != *wantIndex.IndexName {
			t.Errorf("IndexName = %q, want %q", got, dynamo.IndexGSI1)
		}
		if got, want := keySchema(get(gsi, "KeySchema")), []string{dynamo.AttrGSI1PK + " HASH", dynamo.AttrGSI1SK + " RANGE"}; !slices.Equal(got, want) {
			t.Errorf("index KeySchema = %q, want %q", got, want)
		}
		if got, want := scalar(get(gsi, "Projection", "ProjectionType")), string(wantIndex.Projection.ProjectionType); got != want {
			t.Errorf("index ProjectionType = %q, want %q", got, want)
		}
		if n := get(table, "LocalSecondaryIndexes"); n != nil {
			t.Error("the table has local secondary indexes; the store uses none")
		}
	})

	t.Run("TimeToLive", func(t *testing.T) {
		if got := scalar(get(table, "TimeToLiveSpecification", "AttributeName")); got != dynamo.AttrTTL {
			t.Errorf("TimeToLiveSpecification.AttributeName = %q, want %q", got, dynamo.AttrTTL)
		}
		if got := scalar(get(table, "TimeToLiveSpecification", "Enabled")); got != "true" {
			t.Errorf("TimeToLiveSpecification.Enabled = %q, want true", got)
		}
	})

	t.Run("Protection", func(t *testing.T) {
		if got := scalar(get(table, "SSESpecification", "SSEType")); got != "KMS" {
			t.Errorf("SSESpecification.SSEType = %q, want KMS", got)
		}
		replicas := items(get(table, "Replicas"))
		if tables[0].typ == "AWS::DynamoDB::Table" {
			// A single-region table keeps these at the top level.
			replicas = []*yaml.Node{table}
		}
		if len(replicas) == 0 {
			t.Error("the global table has no replicas")
		}
		for i, r := range replicas {
			if got := scalar(get(r, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled")); got != "true" {
				t.Errorf("replica %d: point-in-time recovery is %q, want true", i, got)
			}
			if got := scalar(get(r, "DeletionProtectionEnabled")); got != "true" {
				t.Errorf("replica %d: deletion protection is %q, want true", i, got)
			}
			if get(r, "SSESpecification", "KMSMasterKeyId") == nil {
				t.Errorf("replica %d: no customer-managed KMS key", i)
			}
		}
	})
}

// secretSettings are the settings whose values are secrets: they come to the
// task as ECS secrets (from Secrets Manager), never as plain environment values.
var secretSettings = []string{"BROKER_LWA_CLIENT_SECRET", "BROKER_JWT_HS256_SECRET", "BROKER_ENCRYPTION_KEY"}

// singleSkillSettings make the one skill of a broker without a skills file;
// with one, they stay unset (the broker refuses the mix).
var singleSkillSettings = []string{"BROKER_LWA_CLIENT_ID", "BROKER_LWA_CLIENT_SECRET", "BROKER_ALEXA_CLIENT_IDS", "BROKER_ALEXA_REGION"}

func TestTaskDefinition_Settings(t *testing.T) {
	defs := loadResources(t, "AWS::ECS::TaskDefinition")
	if len(defs) != 1 || defs[0].file != "broker-service.yaml" || defs[0].name != "TaskDefinition" {
		t.Fatalf("task definitions = %v, want TaskDefinition of broker-service.yaml", defs)
	}
	known := config.Names()
	for _, d := range serviceDeployments {
		t.Run(d.name, func(t *testing.T) {
			s := deploy(t, "broker-service.yaml", d.params)
			if r := s.refusals(t); len(r) > 0 {
				t.Fatalf("CloudFormation would refuse the parameters: %s", strings.Join(r, "; "))
			}
			broker := container(s.resource("TaskDefinition"), "broker")
			if broker == nil {
				t.Fatal("no container broker (the load balancer's target)")
			}
			env, twiceEnv := namedValues(broker, "Environment", "Value")
			secrets, twiceSecrets := namedValues(broker, "Secrets", "ValueFrom")
			// Every BROKER_ variable the container gets, and where from.
			settings := map[string]string{}
			for name := range env {
				if strings.HasPrefix(name, "BROKER_") {
					settings[name] = "Environment"
				}
			}
			for name := range secrets {
				if strings.HasPrefix(name, "BROKER_") {
					settings[name] = "Secrets"
				}
			}

			t.Run("Known", func(t *testing.T) {
				if len(settings) == 0 {
					t.Fatal("no BROKER_ settings")
				}
				for name, list := range settings {
					if !slices.Contains(known, name) {
						t.Errorf("%s sets %s, which is not a setting of the broker (internal/config)", list, name)
					}
				}
			})

			t.Run("Once", func(t *testing.T) {
				for _, name := range append(twiceEnv, twiceSecrets...) {
					t.Errorf("%s is given twice in one list", name)
				}
				for name := range env {
					if _, ok := secrets[name]; ok {
						t.Errorf("%s is both in Environment and in Secrets", name)
					}
				}
			})

			t.Run("SecretsAreSecrets", func(t *testing.T) {
				for _, name := range secretSettings {
					v, ok := env[name]
					if !ok {
						continue
					}
					// A kms: key id names a key; it is not one.
					if name == "BROKER_ENCRYPTION_KEY" && strings.HasPrefix(text(v), "kms:") {
						continue
					}
					t.Errorf("%s is a plain environment value; it must come from Secrets", name)
				}
			})

			t.Run("Required", func(t *testing.T) {
				required := []string{"BROKER_STORE", "BROKER_JWT_ISSUER", "BROKER_JWT_AUDIENCE", "BROKER_ENCRYPTION_KEY",
					"BROKER_HTTP_ADDR", "BROKER_GRPC_ADDR"}
				if d.params["SkillsFileArn"] == "" {
					required = append(required, "BROKER_LWA_CLIENT_ID", "BROKER_LWA_CLIENT_SECRET", "BROKER_ALEXA_CLIENT_IDS")
				} else {
					required = append(required, "BROKER_SKILLS_FILE")
				}
				for _, name := range required {
					if settings[name] == "" {
						t.Errorf("%s is not set; the broker would not start, or would listen on loopback only", name)
					}
				}
				if got := text(env["BROKER_STORE"]); !strings.HasPrefix(got, "dynamodb:") {
					t.Errorf("BROKER_STORE = %q, want dynamodb:TABLE", got)
				}
			})

			t.Run("OneSkillOrASkillsFile", func(t *testing.T) {
				if settings["BROKER_SKILLS_FILE"] == "" {
					return
				}
				for _, name := range singleSkillSettings {
					if list := settings[name]; list != "" {
						t.Errorf("%s sets %s beside BROKER_SKILLS_FILE; the broker refuses the mix", list, name)
					}
				}
			})

			t.Run("Ports", func(t *testing.T) {
				var ports []string
				for _, m := range items(get(broker, "PortMappings")) {
					ports = append(ports, scalar(get(m, "ContainerPort")))
				}
				for _, name := range []string{"BROKER_HTTP_ADDR", "BROKER_GRPC_ADDR"} {
					host, port, err := net.SplitHostPort(scalar(env[name]))
					if err != nil || host != "0.0.0.0" {
						t.Errorf("%s = %q, want 0.0.0.0:PORT", name, scalar(env[name]))
						continue
					}
					if !slices.Contains(ports, port) {
						t.Errorf("%s listens on %s, which PortMappings (%v) do not map", name, port, ports)
					}
				}
			})
		})
	}
}

func TestAlarms_NameTheStoreIndex(t *testing.T) {
	found := 0
	for _, a := range loadResources(t, "AWS::CloudWatch::Alarm") {
		walk(a.props, func(n *yaml.Node) {
			if scalar(get(n, "Name")) == "GlobalSecondaryIndexName" {
				found++
				if got := scalar(get(n, "Value")); got != dynamo.IndexGSI1 {
					t.Errorf("%s: %s watches index %q, the store's index is %q", a.file, a.name, got, dynamo.IndexGSI1)
				}
			}
		})
	}
	if found == 0 {
		t.Error("no alarm watches the store's index (DynamoDB throttling)")
	}
}

func TestPolicies_NoWildcardActionOnWildcardResource(t *testing.T) {
	statements := 0
	for _, r := range loadResources(t, "AWS::IAM::Role", "AWS::IAM::RolePolicy", "AWS::IAM::Policy",
		"AWS::IAM::ManagedPolicy", "AWS::KMS::Key", "AWS::SecretsManager::ResourcePolicy") {
		walk(r.props, func(n *yaml.Node) {
			for _, st := range items(get(n, "Statement")) {
				statements++
				if get(st, "NotAction") != nil || get(st, "NotResource") != nil {
					t.Errorf("%s: %s: a statement uses NotAction or NotResource", r.file, r.name)
				}
				if scalar(get(st, "Effect")) != "Allow" {
					continue
				}
				wildResource := false
				for _, res := range values(get(st, "Resource")) {
					wildResource = wildResource || scalar(res) == "*"
				}
				for _, a := range values(get(st, "Action")) {
					action := scalar(a)
					if action == "*" || wildResource && strings.Contains(action, "*") {
						t.Errorf("%s: %s: action %q on resource \"*\"", r.file, r.name, action)
					}
				}
			}
		})
	}
	if statements == 0 {
		t.Fatal("found no policy statements")
	}
}

func TestParameters_NoSecrets(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	for _, file := range files {
		params := get(parse(t, file), "Parameters")
		if params == nil {
			continue
		}
		for i := 0; i+1 < len(params.Content); i += 2 {
			// Secrets live in Secrets Manager: a NoEcho parameter would mean
			// one is passed through the stack instead.
			if scalar(get(params.Content[i+1], "NoEcho")) == "true" {
				t.Errorf("%s: parameter %s is NoEcho; secrets belong in the data stack's secret", file, params.Content[i].Value)
			}
		}
	}
}

// values returns a policy element's values: a single value or a list.
func values(n *yaml.Node) []*yaml.Node {
	if n != nil && n.Kind == yaml.SequenceNode {
		return items(n)
	}
	if n == nil {
		return nil
	}
	return branches(n)
}

// walk calls fn for n and every node below it.
func walk(n *yaml.Node, fn func(*yaml.Node)) {
	if n == nil {
		return
	}
	fn(n)
	for _, c := range n.Content {
		walk(c, fn)
	}
}
