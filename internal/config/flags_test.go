package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/config"
)

// TestParse_BoolFlag: a true-or-false setting's flag may stand alone, meaning
// true, or take its value after =; its variable takes any of Go's spellings.
// Every such setting is held to the same cases; in args, FLAG stands for the
// setting's flag name.
func TestParse_BoolFlag(t *testing.T) {
	settings := []struct {
		flag, env string
		get       func(config.Config) bool
	}{
		{"dynamodb-create-table", "BROKER_DYNAMODB_CREATE_TABLE", func(c config.Config) bool { return c.DynamoDBCreateTable }},
		{"dynamodb-clock-order", "BROKER_DYNAMODB_CLOCK_ORDER", func(c config.Config) bool { return c.DynamoDBClockOrder }},
	}
	var flags []string
	for _, s := range settings {
		flags = append(flags, s.flag)
	}
	if !slices.Equal(flags, config.BoolFlags()) {
		t.Errorf("the cases cover %q; the true-or-false settings are %q", flags, config.BoolFlags())
	}
	cases := []struct {
		name string
		args []string
		env  string // the setting's variable
		want bool
	}{
		{"Default", nil, "", false},
		{"Bare", []string{"--FLAG"}, "", true},
		{"BareOneDash", []string{"-FLAG"}, "", true},
		{"BareBeatsEnvironment", []string{"--FLAG"}, "false", true},
		{"EqualsFalse", []string{"--FLAG=false"}, "true", false},
		{"EqualsTrue", []string{"--FLAG=true"}, "", true},
		{"BareThenOtherFlag", []string{"--FLAG", "--grpc-addr", "127.0.0.1:7070"}, "", true},
		{"Environment", nil, "TRUE", true},
		{"EnvironmentOne", nil, "1", true},
	}
	for _, setting := range settings {
		for _, tc := range cases {
			t.Run(setting.flag+"/"+tc.name, func(t *testing.T) {
				env := validEnv()
				env[setting.env] = tc.env
				var args []string
				for _, a := range tc.args {
					args = append(args, strings.Replace(a, "FLAG", setting.flag, 1))
				}
				c, err := config.Parse(args, getenv(env))
				if err != nil {
					t.Fatal(err)
				}
				if got := setting.get(c); got != tc.want {
					t.Errorf("Parse(%q, %s=%q): %s = %v, want %v", args, setting.env, tc.env, setting.flag, got, tc.want)
				}
			})
		}
	}

	t.Run("ValueAfterSpace", func(t *testing.T) {
		_, err := config.Parse([]string{"--dynamodb-create-table", "false"}, getenv(validEnv()))
		if err == nil || !strings.Contains(err.Error(), "--dynamodb-create-table=false") {
			t.Errorf("error = %v, want it to show --dynamodb-create-table=false", err)
		}
	})
}

// TestParse_FlagNamed: a problem of a setting given on the command line names
// the flag, one given in the environment names the variable, whether the
// value could not be read or failed validation.
func TestParse_FlagNamed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string // merged over validEnv
		args     []string
		want     string
		notWants []string
	}{
		{"FlagUnreadable", nil, []string{"--refresh-ahead", "soon"}, "--refresh-ahead: not a duration", []string{"BROKER_REFRESH_AHEAD"}},
		{"FlagInvalid", nil, []string{"--grpc-addr", "localhost"}, "--grpc-addr: not a host:port address", []string{"BROKER_GRPC_ADDR:"}},
		{"FlagRequired", nil, []string{"--lwa-client-id", " "}, "--lwa-client-id: required", []string{"BROKER_LWA_CLIENT_ID"}},
		{"FlagBool", nil, []string{"--dynamodb-create-table=maybe"}, `--dynamodb-create-table: "maybe" is not true or false`, nil},
		{"FlagKey", nil, []string{"--encryption-key", "kms:"}, "--encryption-key: key 1 of the list: kms: needs a key id", []string{"BROKER_ENCRYPTION_KEY:"}},
		{"EnvironmentInvalid", map[string]string{"BROKER_GRPC_ADDR": "localhost"}, nil, "BROKER_GRPC_ADDR: not a host:port address", []string{"--grpc-addr"}},
		{"FlagWinsOverEnvironment", map[string]string{"BROKER_GRPC_ADDR": "127.0.0.1:1"}, []string{"--grpc-addr", "nohost"}, "--grpc-addr: not a host:port address", []string{"BROKER_GRPC_ADDR:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := config.Parse(tc.args, getenv(env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			for _, nw := range tc.notWants {
				if strings.Contains(err.Error(), nw) {
					t.Errorf("error %q names %s", err, nw)
				}
			}
		})
	}
}

// TestConfig_OneProblemPerSetting: each setting appears once in the error. A
// value that cannot be read is its setting's only problem (not also "must be
// more than 0" of the zero value); several problems of one setting share its
// entry.
func TestConfig_OneProblemPerSetting(t *testing.T) {
	short := "c2l4dGVlbi1ieXRlLWtleQ==" // base64 of 16 bytes
	for _, tc := range []struct {
		name    string
		env     map[string]string // merged over validEnv
		setting string
		want    []string // in the setting's one entry
		notWant string
	}{
		{"UnreadableDuration", map[string]string{"BROKER_REPORT_DEADLINE": "a day"}, "BROKER_REPORT_DEADLINE", []string{"not a duration"}, "more than 0"},
		{"UnreadableRetention", map[string]string{"BROKER_EVENT_RETENTION": "90 days"}, "BROKER_EVENT_RETENTION", []string{"not a duration"}, "more than 0"},
		{"UnreadableRefreshAhead", map[string]string{"BROKER_REFRESH_AHEAD": "soon"}, "BROKER_REFRESH_AHEAD", []string{"not a duration"}, "at most 1h"},
		{"TwoBadKeys", map[string]string{"BROKER_ENCRYPTION_KEY": encryptionKey + ",," + short}, "BROKER_ENCRYPTION_KEY",
			[]string{"key 2 of the list is empty", "key 3 of the list must be base64 of 32 bytes"}, ""},
		{"BadJWKSURLAndTwoSources", map[string]string{"BROKER_JWT_JWKS_URL": "ftp://x"}, "BROKER_JWT_JWKS_URL",
			[]string{"not an http(s) URL", "exactly one of"}, ""},
		{"BadTableNameWithEndpoint", map[string]string{"BROKER_STORE": "dynamodb:a", "BROKER_DYNAMODB_ENDPOINT": "x"}, "BROKER_STORE",
			[]string{"table name"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := config.Parse(nil, getenv(env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			msg := err.Error()
			if n := strings.Count(msg, tc.setting+":"); n != 1 {
				t.Errorf("error names %s %d times, want once: %q", tc.setting, n, msg)
			}
			_, entry, _ := strings.Cut(msg, tc.setting+":")
			entry, _, _ = strings.Cut(entry, "; BROKER_")
			for _, want := range tc.want {
				if !strings.Contains(entry, want) {
					t.Errorf("%s's entry %q does not say %q", tc.setting, entry, want)
				}
			}
			if tc.notWant != "" && strings.Contains(msg, tc.notWant) {
				t.Errorf("error %q says %q too", msg, tc.notWant)
			}
		})
	}

	t.Run("EmptyEnvironment", func(t *testing.T) {
		_, err := config.Parse(nil, getenv(map[string]string{}))
		if err == nil {
			t.Fatal("Parse of an empty environment succeeded")
		}
		seen := map[string]bool{}
		for _, entry := range strings.Split(strings.TrimPrefix(err.Error(), "invalid configuration: "), "; ") {
			name, _, _ := strings.Cut(entry, ":")
			if seen[name] {
				t.Errorf("%s is named twice: %q", name, err)
			}
			seen[name] = true
		}
	})
}

// TestConfig_LogLevel: BROKER_LOG_LEVEL is read in any case, and kept in
// lower case.
func TestConfig_LogLevel(t *testing.T) {
	for _, tc := range []struct{ value, want string }{
		{"", "info"}, {"debug", "debug"}, {"DEBUG", "debug"}, {" Warn ", "warn"}, {"ERROR", "error"}, {"Info", "info"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			env := validEnv()
			env["BROKER_LOG_LEVEL"] = tc.value
			c, err := config.Parse(nil, getenv(env))
			if err != nil {
				t.Fatal(err)
			}
			if c.LogLevel != tc.want {
				t.Errorf("LogLevel = %q, want %q", c.LogLevel, tc.want)
			}
		})
	}
	env := validEnv()
	env["BROKER_LOG_LEVEL"] = "LOUD"
	if _, err := config.Parse(nil, getenv(env)); err == nil || !strings.Contains(err.Error(), "BROKER_LOG_LEVEL: must be debug, info, warn or error") {
		t.Errorf("error = %v, want BROKER_LOG_LEVEL named", err)
	}
}

// TestConfig_PublicKeyFile: a PEM file that cannot be read is named by its
// path, with the reason.
func TestConfig_PublicKeyFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"Missing", missing, []string{`BROKER_JWT_PUBLIC_KEY_FILE: cannot read "` + missing + `"`, "no such file or directory"}},
		{"Folder", dir, []string{`BROKER_JWT_PUBLIC_KEY_FILE: cannot read "` + dir + `"`, "is a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			env["BROKER_JWT_HS256_SECRET"], env["BROKER_JWT_PUBLIC_KEY_FILE"] = "", tc.path
			_, err := config.Parse(nil, getenv(env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	t.Run("Readable", func(t *testing.T) {
		path := filepath.Join(dir, "key.pem")
		if err := os.WriteFile(path, []byte("-----BEGIN PUBLIC KEY-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := validEnv()
		env["BROKER_JWT_HS256_SECRET"], env["BROKER_JWT_PUBLIC_KEY_FILE"] = "", path
		if _, err := config.Parse(nil, getenv(env)); err != nil {
			t.Errorf("Parse: %v", err)
		}
	})
}

// TestConfig_EncryptionKeyHint: an encryption key that is missing or
// malformed is answered with how to make one, and never with the key.
func TestConfig_EncryptionKeyHint(t *testing.T) {
	const hint = "to make a key: head -c 32 /dev/urandom | base64"
	for _, tc := range []struct{ name, value, want string }{
		{"Missing", "", "BROKER_ENCRYPTION_KEY: required: base64 of 32 random bytes, or kms:KEY_ID (" + hint + ")"},
		{"NotBase64", "not base64 at all!", "key 1 of the list must be base64 of 32 bytes, or kms:KEY_ID (it is not standard base64)"},
		{"Short", "c2l4dGVlbi1ieXRlLWtleQ==", "(it decodes to 16 bytes), and " + hint},
		{"Hex", strings.Repeat("ab", 32), "(it decodes to 48 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			env["BROKER_ENCRYPTION_KEY"] = tc.value
			_, err := config.Parse(nil, getenv(env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), hint) {
				t.Errorf("error %q does not say %q and how to make a key", err, tc.want)
			}
			if tc.value != "" && strings.Contains(err.Error(), tc.value) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}
