package cloudformation_test

import (
	"maps"
	"path"
	"slices"
	"strings"
	"testing"
)

// ARNs the deployments of the tests name.
const (
	skillsSecretArn    = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:reciprocal-broker/skills-AbCdEf"
	skillsParameterArn = "arn:aws:ssm:eu-west-1:123456789012:parameter/reciprocal-broker/skills"
	babySecretArn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:reciprocal-broker/baby-Gh1jKl"
	homeSecretArn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:reciprocal-broker/home-Mn0pQr"
	lwaSecretsArn      = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:reciprocal-broker/lwa-St2uVw"
	skillsKeyArn       = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// serviceParams are values for the service stack's parameters that have no
// default, but for the skill's.
var serviceParams = map[string]string{
	"ImageUri":              "123456789012.dkr.ecr.eu-west-1.amazonaws.com/reciprocal-broker:1.0.0",
	"VpcId":                 "vpc-0123456789abcdef0",
	"LoadBalancerSubnetIds": "subnet-0a,subnet-0b",
	"TaskSubnetIds":         "subnet-1a,subnet-1b",
	"CertificateArn":        "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
	"DomainName":            "broker.partner.example",
	"OperatorCidr":          "10.0.0.0/8",
	"JwtIssuer":             "https://auth.partner.example",
	"JwtAudience":           "reciprocal-broker",
	"JwtJwksUrl":            "https://auth.partner.example/.well-known/jwks.json",
}

// with returns serviceParams with more values, the last winning.
func with(more ...map[string]string) map[string]string {
	out := maps.Clone(serviceParams)
	for _, m := range more {
		maps.Copy(out, m)
	}
	return out
}

// grant is what one statement of the execution role allows.
type grant struct {
	actions, resources []string
	viaServices        []string // its kms:ViaService condition, if any
}

// deployment is one set of parameter values the tests make the service stack
// with, and what it must make of a skills file.
type deployment struct {
	name   string
	params map[string]string
	// skillSecrets are the broker's ECS secrets other than BROKER_ settings:
	// name, ValueFrom.
	skillSecrets map[string]string
	// grants are the execution role's statements beyond those of every
	// deployment (baseGrants), by Sid.
	grants map[string]grant
}

// baseGrants are the Sids of the execution role's statements in every
// deployment: pull the image, write logs, read the data stack's secret.
var baseGrants = []string{"EcrLogin", "EcrPull", "Logs", "Secret"}

var serviceDeployments = []deployment{
	{
		name:   "OneSkill",
		params: with(map[string]string{"LwaClientId": "amzn1.application-oa2-client.1111aaaa", "AlexaClientIds": "alexa-skill"}),
	},
	{
		// The skills file's other parameters do nothing without SkillsFileArn.
		name: "OneSkillSealedWithKms",
		params: with(map[string]string{"LwaClientId": "amzn1.application-oa2-client.1111aaaa", "AlexaClientIds": "alexa-skill",
			"AlexaRegion": "EU", "EncryptionKeySource": "kms", "SkillsFileSource": "ssm", "SkillsKmsKeyArn": skillsKeyArn}),
	},
	{
		// Slots 1 and 3: a whole secret, and a key of a JSON secret.
		name: "SkillsFileInSecretsManager",
		params: with(map[string]string{
			"SkillsFileArn":    skillsSecretArn,
			"SkillSecret1Name": "BABY_LWA_CLIENT_SECRET", "SkillSecret1Arn": babySecretArn,
			"SkillSecret3Name": "HOME_LWA_CLIENT_SECRET", "SkillSecret3Arn": lwaSecretsArn, "SkillSecret3Key": "home",
		}),
		skillSecrets: map[string]string{
			"BABY_LWA_CLIENT_SECRET": babySecretArn,
			"HOME_LWA_CLIENT_SECRET": lwaSecretsArn + ":home::",
		},
		grants: map[string]grant{
			"SkillsFileSecret": {actions: []string{"secretsmanager:GetSecretValue"}, resources: []string{skillsSecretArn}},
			"SkillSecrets":     {actions: []string{"secretsmanager:GetSecretValue"}, resources: []string{babySecretArn, lwaSecretsArn}},
		},
	},
	{
		// Every slot, a customer-managed key.
		name: "SkillsFileInParameterStore",
		params: with(map[string]string{
			"SkillsFileArn": skillsParameterArn, "SkillsFileSource": "ssm", "SkillsKmsKeyArn": skillsKeyArn,
			"SkillsFileInitImage": "public.ecr.aws/docker/library/busybox@sha256:" + strings.Repeat("0f", 32),
			"SkillSecret1Name":    "BABY_LWA_CLIENT_SECRET", "SkillSecret1Arn": babySecretArn,
			"SkillSecret2Name": "HOME_LWA_CLIENT_SECRET", "SkillSecret2Arn": homeSecretArn,
			"SkillSecret3Name": "NA_LWA_CLIENT_SECRET", "SkillSecret3Arn": lwaSecretsArn, "SkillSecret3Key": "na",
			"SkillSecret4Name": "EU_LWA_CLIENT_SECRET", "SkillSecret4Arn": lwaSecretsArn, "SkillSecret4Key": "eu",
		}),
		skillSecrets: map[string]string{
			"BABY_LWA_CLIENT_SECRET": babySecretArn,
			"HOME_LWA_CLIENT_SECRET": homeSecretArn,
			"NA_LWA_CLIENT_SECRET":   lwaSecretsArn + ":na::",
			"EU_LWA_CLIENT_SECRET":   lwaSecretsArn + ":eu::",
		},
		grants: map[string]grant{
			"SkillsFileParameter": {actions: []string{"ssm:GetParameters"}, resources: []string{skillsParameterArn}},
			"SkillSecrets": {actions: []string{"secretsmanager:GetSecretValue"},
				resources: []string{babySecretArn, homeSecretArn, lwaSecretsArn, lwaSecretsArn}},
			"SkillsKey": {actions: []string{"kms:Decrypt"}, resources: []string{skillsKeyArn},
				viaServices: []string{"secretsmanager.eu-west-1.amazonaws.com", "ssm.eu-west-1.amazonaws.com"}},
		},
	},
	{
		// No secret slot: no SkillSecrets statement either (one with no
		// Resource would be refused).
		name:   "SkillsFileInParameterStoreWithoutSecrets",
		params: with(map[string]string{"SkillsFileArn": skillsParameterArn, "SkillsFileSource": "ssm"}),
		grants: map[string]grant{
			"SkillsFileParameter": {actions: []string{"ssm:GetParameters"}, resources: []string{skillsParameterArn}},
		},
	},
}

// TestServiceStack_SkillsFile checks what each deployment makes of the skills
// file: without one, the task is as it always was; with one, a first
// container writes it to a shared volume, the broker waits for it and reads
// it from there, gets the skills' secrets under their names, and the
// execution role may read exactly the file and those secrets.
func TestServiceStack_SkillsFile(t *testing.T) {
	for _, d := range serviceDeployments {
		t.Run(d.name, func(t *testing.T) {
			s := deploy(t, "broker-service.yaml", d.params)
			if r := s.refusals(t); len(r) > 0 {
				t.Fatalf("CloudFormation would refuse the parameters: %s", strings.Join(r, "; "))
			}
			taskDef := s.resource("TaskDefinition")
			broker := container(taskDef, "broker")
			if broker == nil {
				t.Fatal("no container broker")
			}
			env, _ := namedValues(broker, "Environment", "Value")
			secrets, _ := namedValues(broker, "Secrets", "ValueFrom")
			skillsFile := scalar(env["BROKER_SKILLS_FILE"])
			hasFile := d.params["SkillsFileArn"] != ""

			t.Run("Containers", func(t *testing.T) {
				var names []string
				for _, c := range items(get(taskDef, "ContainerDefinitions")) {
					names = append(names, scalar(get(c, "Name")))
				}
				want := []string{"broker"}
				if hasFile {
					want = append(want, "skills-file")
				}
				if !slices.Equal(names, want) {
					t.Errorf("containers = %q, want %q", names, want)
				}
			})

			if !hasFile {
				t.Run("AsBefore", func(t *testing.T) {
					if skillsFile != "" {
						t.Errorf("BROKER_SKILLS_FILE = %q without SkillsFileArn", skillsFile)
					}
					for _, key := range []string{"DependsOn", "MountPoints"} {
						if get(broker, key) != nil {
							t.Errorf("the broker container has %s without a skills file", key)
						}
					}
					if get(taskDef, "Volumes") != nil {
						t.Error("the task has Volumes without a skills file")
					}
				})
			}

			if hasFile {
				t.Run("FileWrittenBeforeTheBrokerStarts", func(t *testing.T) {
					if skillsFile == "" || !path.IsAbs(skillsFile) {
						t.Fatalf("BROKER_SKILLS_FILE = %q, want an absolute path", skillsFile)
					}
					dir := path.Dir(skillsFile)
					var volumes []string
					for _, v := range items(get(taskDef, "Volumes")) {
						volumes = append(volumes, scalar(get(v, "Name")))
					}
					writer := container(taskDef, "skills-file")
					if writer == nil {
						t.Fatal("no container skills-file")
					}
					if got := scalar(get(writer, "Essential")); got != "false" {
						t.Errorf("skills-file: Essential = %q, want false (it exits once the file is written)", got)
					}
					deps := items(get(broker, "DependsOn"))
					if len(deps) != 1 || scalar(get(deps[0], "ContainerName")) != "skills-file" || scalar(get(deps[0], "Condition")) != "SUCCESS" {
						t.Error("the broker does not depend on skills-file with Condition SUCCESS")
					}

					// The broker reads the file's directory from a read-only
					// mount of the volume skills-file writes to.
					mounts := map[string][]string{}
					for _, c := range []string{"broker", "skills-file"} {
						for _, m := range items(get(container(taskDef, c), "MountPoints")) {
							mounts[c] = append(mounts[c], scalar(get(m, "SourceVolume"))+" "+scalar(get(m, "ContainerPath"))+" readonly="+scalar(get(m, "ReadOnly")))
						}
					}
					if len(volumes) != 1 {
						t.Fatalf("volumes = %q, want one", volumes)
					}
					if got, want := mounts["broker"], []string{volumes[0] + " " + dir + " readonly=true"}; !slices.Equal(got, want) {
						t.Errorf("broker mounts %q, want %q", got, want)
					}
					if got, want := mounts["skills-file"], []string{volumes[0] + " " + dir + " readonly=false"}; !slices.Equal(got, want) {
						t.Errorf("skills-file mounts %q, want %q", got, want)
					}

					initSecrets, _ := namedValues(writer, "Secrets", "ValueFrom")
					if len(initSecrets) != 1 || scalar(initSecrets["SKILLS_YAML"]) != d.params["SkillsFileArn"] {
						t.Errorf("skills-file gets secrets %v, want only SKILLS_YAML from %s", strs(get(writer, "Secrets")), d.params["SkillsFileArn"])
					}
					var command []string
					for _, n := range items(get(writer, "EntryPoint")) {
						command = append(command, scalar(n))
					}
					for _, n := range items(get(writer, "Command")) {
						command = append(command, scalar(n))
					}
					script := strings.Join(command, " ")
					for _, want := range []string{`"$SKILLS_YAML"`, " " + skillsFile} {
						if !strings.Contains(script, want) {
							t.Errorf("skills-file runs %q, which does not contain %q", script, want)
						}
					}
					if got := scalar(get(writer, "Image")); got != s.params["SkillsFileInitImage"] {
						t.Errorf("skills-file image = %q", got)
					}
					if got := strs(get(writer, "LinuxParameters", "Capabilities", "Drop")); !slices.Equal(got, []string{"ALL"}) {
						t.Errorf("skills-file drops capabilities %q, want ALL", got)
					}
					if got := scalar(get(writer, "ReadonlyRootFilesystem")); got != "true" {
						t.Errorf("skills-file: ReadonlyRootFilesystem = %q, want true", got)
					}
				})
			}

			t.Run("SkillSecrets", func(t *testing.T) {
				got := map[string]string{}
				for name, v := range secrets {
					if !strings.HasPrefix(name, "BROKER_") {
						got[name] = scalar(v)
					}
				}
				want := d.skillSecrets
				if want == nil {
					want = map[string]string{}
				}
				if !maps.Equal(got, want) {
					t.Errorf("the broker's skill secrets = %v, want %v", got, want)
				}
			})

			t.Run("ExecutionRole", func(t *testing.T) {
				sts := statements(s.resource("ExecutionRole"))
				wantSids := append(slices.Clone(baseGrants), slices.Collect(maps.Keys(d.grants))...)
				slices.Sort(wantSids)
				if got := slices.Sorted(maps.Keys(sts)); !slices.Equal(got, wantSids) {
					t.Errorf("statements = %q, want %q", got, wantSids)
				}
				for sid, want := range d.grants {
					st := sts[sid]
					if st == nil {
						continue
					}
					if got := scalar(get(st, "Effect")); got != "Allow" {
						t.Errorf("%s: Effect = %q", sid, got)
					}
					if got := strs(get(st, "Action")); !slices.Equal(got, want.actions) {
						t.Errorf("%s: actions %q, want %q", sid, got, want.actions)
					}
					if got := strs(get(st, "Resource")); !slices.Equal(got, want.resources) {
						t.Errorf("%s: resources %q, want %q", sid, got, want.resources)
					}
					if got := strs(get(st, "Condition", "StringEquals", "kms:ViaService")); !slices.Equal(got, want.viaServices) {
						t.Errorf("%s: kms:ViaService %q, want %q", sid, got, want.viaServices)
					}
				}
			})
		})
	}
}

// TestServiceStack_Refusals checks that CloudFormation refuses, before it
// makes anything, parameters the broker would refuse at start-up or that
// would leave a secret unreadable.
func TestServiceStack_Refusals(t *testing.T) {
	oneSkill := map[string]string{"LwaClientId": "amzn1.application-oa2-client.1111aaaa", "AlexaClientIds": "alexa-skill"}
	plus := func(a, b map[string]string) map[string]string {
		out := maps.Clone(a)
		maps.Copy(out, b)
		return out
	}
	tests := []struct {
		name   string
		params map[string]string
		want   string // "" means accepted
	}{
		{"OneSkill", oneSkill, ""},
		{"OneSkillWithoutClientId", map[string]string{"AlexaClientIds": "alexa-skill"}, "rule SingleSkillSettings: LwaClientId is required"},
		{"OneSkillWithoutAlexaClientIds", map[string]string{"LwaClientId": "amzn1.application-oa2-client.1111aaaa"}, "rule SingleSkillSettings: AlexaClientIds is required"},
		{"SkillSecretWithoutSkillsFile", plus(oneSkill, map[string]string{"SkillSecret1Name": "BABY", "SkillSecret1Arn": babySecretArn}), "rule SingleSkillSettings: The SkillSecret parameters"},
		{"SkillsFile", map[string]string{"SkillsFileArn": skillsSecretArn}, ""},
		{"SkillsFileAndClientId", plus(oneSkill, map[string]string{"SkillsFileArn": skillsSecretArn}), "rule SkillsFileSettings"},
		{"SkillsFileAndAlexaRegion", map[string]string{"SkillsFileArn": skillsSecretArn, "AlexaRegion": "EU"}, "rule SkillsFileSettings"},
		{"SkillsFileSecretWithoutSuffix", map[string]string{"SkillsFileArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:skills"}, "parameter SkillsFileArn"},
		{"SkillsFileName", map[string]string{"SkillsFileArn": "/reciprocal-broker/skills", "SkillsFileSource": "ssm"}, "parameter SkillsFileArn"},
		{"SkillsFileInGovCloud", map[string]string{"SkillsFileArn": "arn:aws-us-gov:ssm:us-gov-west-1:123456789012:parameter/skills", "SkillsFileSource": "ssm"}, ""},
		{"SkillsFileUnknownSource", map[string]string{"SkillsFileArn": skillsSecretArn, "SkillsFileSource": "s3"}, "parameter SkillsFileSource"},
		{"SkillSecretNameWithoutArn", map[string]string{"SkillsFileArn": skillsSecretArn, "SkillSecret2Name": "HOME"}, "rule SkillSecret2IsComplete: SkillSecret2Name and SkillSecret2Arn"},
		{"SkillSecretArnWithoutName", map[string]string{"SkillsFileArn": skillsSecretArn, "SkillSecret4Arn": homeSecretArn}, "rule SkillSecret4IsComplete: SkillSecret4Name and SkillSecret4Arn"},
		{"SkillSecretKeyWithoutArn", map[string]string{"SkillsFileArn": skillsSecretArn, "SkillSecret1Key": "baby"}, "rule SkillSecret1IsComplete: SkillSecret1Key needs"},
		{"SkillSecretLowerCaseName", map[string]string{"SkillsFileArn": skillsSecretArn, "SkillSecret1Name": "baby", "SkillSecret1Arn": babySecretArn}, "parameter SkillSecret1Name"},
		{"SkillSecretParameterArn", map[string]string{"SkillsFileArn": skillsSecretArn, "SkillSecret1Name": "BABY", "SkillSecret1Arn": skillsParameterArn}, "parameter SkillSecret1Arn"},
		{"SkillsKeyAlias", map[string]string{"SkillsFileArn": skillsSecretArn, "SkillsKmsKeyArn": "alias/skills"}, "parameter SkillsKmsKeyArn"},
		{"GrpcOn443", plus(oneSkill, map[string]string{"GrpcListenerPort": "443"}), "rule GrpcPortIsNot443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := deploy(t, "broker-service.yaml", with(tt.params)).refusals(t)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("refused: %q, want accepted", got)
			case tt.want != "" && !slices.ContainsFunc(got, func(r string) bool { return strings.HasPrefix(r, tt.want) }):
				t.Errorf("refusals = %q, want one starting %q", got, tt.want)
			}
		})
	}
}
