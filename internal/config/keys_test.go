package config_test

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/config"
)

// TestConfig_EncryptionKeys: BROKER_ENCRYPTION_KEY is a comma list of base64
// keys and kms: keys, in order, the first being the one that seals.
func TestConfig_EncryptionKeys(t *testing.T) {
	other := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	for _, tc := range []struct {
		name, key string
		want      []string
		wantKMS   string
	}{
		{"One", encryptionKey, []string{encryptionKey}, ""},
		{"Two", other + "," + encryptionKey, []string{other, encryptionKey}, ""},
		{"Spaces", " " + other + " ,  " + encryptionKey, []string{other, encryptionKey}, ""},
		{"KMSFirst", "kms:alias/broker," + encryptionKey, []string{"kms:alias/broker", encryptionKey}, "alias/broker"},
		{"KMSSecond", encryptionKey + ",kms:alias/broker", []string{encryptionKey, "kms:alias/broker"}, ""},
		{"TwoKMS", "kms:new,kms:old", []string{"kms:new", "kms:old"}, "new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			env["BROKER_ENCRYPTION_KEY"] = tc.key
			c, err := config.Parse(nil, getenv(env))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.EncryptionKeys(); !slices.Equal(got, tc.want) {
				t.Errorf("EncryptionKeys() has %d keys, want %d (or in another order)", len(got), len(tc.want))
			}
			if id, ok := c.KMSKeyID(); id != tc.wantKMS || ok != (tc.wantKMS != "") {
				t.Errorf("KMSKeyID() = %q, %v; want %q", id, ok, tc.wantKMS)
			}
		})
	}
}

// TestParse_InvalidKeys: every malformed key of the list is named by its place,
// never by its value, and BROKER_RESEAL_RATE must be a whole number from 0.
func TestParse_InvalidKeys(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	for _, tc := range []struct {
		name, setting, value, want string
	}{
		{"EmptyItem", "BROKER_ENCRYPTION_KEY", encryptionKey + ",", "BROKER_ENCRYPTION_KEY: key 2 of the list is empty"},
		{"ShortSecond", "BROKER_ENCRYPTION_KEY", encryptionKey + "," + short, "BROKER_ENCRYPTION_KEY: key 2 of the list must be base64"},
		{"KMSWithoutID", "BROKER_ENCRYPTION_KEY", "kms:," + encryptionKey, "BROKER_ENCRYPTION_KEY: key 1 of the list: kms: needs a key id"},
		{"NegativeRate", "BROKER_RESEAL_RATE", "-1", "BROKER_RESEAL_RATE: must not be negative"},
		{"RateNotANumber", "BROKER_RESEAL_RATE", "fast", "BROKER_RESEAL_RATE: not a whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			env[tc.setting] = tc.value
			_, err := config.Parse(nil, getenv(env))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if strings.Contains(err.Error(), short) || strings.Contains(err.Error(), encryptionKey) {
				t.Errorf("error %q contains a key", err)
			}
		})
	}
}
