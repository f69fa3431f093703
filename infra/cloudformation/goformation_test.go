package cloudformation_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	cfn "github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
	"go.yaml.in/yaml/v3"
)

// newerProperties are the properties, by resource type, that CloudFormation
// has gained since the goformation version of go.mod was generated; cfn-lint
// knows them. Raise goformation and empty this map when it knows them too.
var newerProperties = map[string][]string{
	// ECS services, November 2024.
	"AWS::ECS::Service": {"AvailabilityZoneRebalancing"},
}

// checkTemplate parses a template with goformation, whose generated types
// know every resource type of CloudFormation and every property of each: it
// fails on a resource type goformation does not know, on a property its type
// does not have (goformation decodes with DisallowUnknownFields), and on a
// value of the wrong kind (a string where a list or a number is wanted).
//
// Properties newer than goformation's types (newerProperties) are taken out
// before it parses the template. Intrinsic functions are resolved as goformation resolves them (a Ref to a
// parameter's default, !Sub and !Join to strings, !GetAtt to null); the
// template is parsed twice, once taking every !If's first value and once its
// second, so that both values of each condition are checked.
func checkTemplate(data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return fmt.Errorf("not a YAML document")
	}
	res := get(doc.Content[0], "Resources")
	if res == nil || res.Kind != yaml.MappingNode || len(res.Content) == 0 {
		return fmt.Errorf("no Resources")
	}
	known := cfn.AllResources()
	for i := 0; i+1 < len(res.Content); i += 2 {
		name, r := res.Content[i].Value, res.Content[i+1]
		typ := scalar(get(r, "Type"))
		if _, ok := known[typ]; !ok && !strings.HasPrefix(typ, "Custom::") {
			return fmt.Errorf("resource %s: unknown resource type %q", name, typ)
		}
		if props := get(r, "Properties"); props != nil && props.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(props.Content); {
				if slices.Contains(newerProperties[typ], props.Content[j].Value) {
					props.Content = slices.Delete(props.Content, j, j+2)
					continue
				}
				j += 2
			}
		}
	}
	data, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	for branch := 1; branch <= 2; branch++ {
		opts := &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
			"Fn::If": func(_ string, input, _ any) any {
				if args, ok := input.([]any); ok && len(args) == 3 {
					return args[branch]
				}
				return nil
			},
		}}
		if _, err := goformation.ParseYAMLWithOptions(data, opts); err != nil {
			return fmt.Errorf("with the %s value of every !If: %w", []string{"", "first", "second"}[branch], err)
		}
	}
	return nil
}

// TestTemplates_Goformation checks both templates against CloudFormation's
// resource types, as cfn-lint does where it is installed.
func TestTemplates_Goformation(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("templates = %v, want broker-data.yaml and broker-service.yaml", files)
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkTemplate(data); err != nil {
				t.Errorf("%s: %v", file, err)
			}
		})
	}
}

// TestServiceStack_Goformation checks the service stack as each deployment of
// the tests makes it (its conditions decided together, as CloudFormation
// decides them, rather than every !If on the same side).
func TestServiceStack_Goformation(t *testing.T) {
	for _, d := range serviceDeployments {
		t.Run(d.name, func(t *testing.T) {
			s := deploy(t, "broker-service.yaml", d.params)
			data, err := yaml.Marshal(s.doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := checkTemplate(data); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCheckTemplate_RejectsBrokenTemplates proves that checkTemplate catches
// the mistakes it is there for, on small templates in testdata.
func TestCheckTemplate_RejectsBrokenTemplates(t *testing.T) {
	tests := []struct {
		name, file string
		wantErr    string // "" means valid
	}{
		{"Valid", "valid.yaml", ""},
		{"MisspeltResourceType", "misspelt-type.yaml", `unknown resource type "AWS::DynamoDB::GlobalTabel"`},
		{"MisspeltProperty", "misspelt-property.yaml", `unknown field "BillingMod"`},
		{"MisspeltNestedProperty", "misspelt-nested-property.yaml", `unknown field "AttributeNme"`},
		{"MisspeltPropertyInIfSecondValue", "misspelt-property-if.yaml", `unknown field "Enable"`},
		{"WrongPropertyType", "wrong-type.yaml", "cannot unmarshal array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			err = checkTemplate(data)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkTemplate(%s) = %v, want nil", tt.file, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("checkTemplate(%s) = nil, want an error containing %q", tt.file, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("checkTemplate(%s) = %v, want an error containing %q", tt.file, err, tt.wantErr)
			}
		})
	}
}
