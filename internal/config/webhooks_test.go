package config_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var webhookSecret = "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

func TestParse_Webhooks(t *testing.T) {
	t.Run("Off", func(t *testing.T) {
		c, err := config.Parse(nil, getenv(validEnv()))
		if err != nil {
			t.Fatal(err)
		}
		if c.WebhookURL != "" || c.WebhookSecret != "" || c.WebhookDeadline != 24*time.Hour {
			t.Fatalf("webhook defaults: %q %q %v", c.WebhookURL, c.WebhookSecret, c.WebhookDeadline)
		}
		want := []tokens.EventType{tokens.EventLinked, tokens.EventRelinkRequired, tokens.EventDeleted, tokens.EventDeliveryFailed}
		if len(c.WebhookEvents) != len(want) {
			t.Fatalf("WebhookEvents = %v, want %v", c.WebhookEvents, want)
		}
		for i := range want {
			if c.WebhookEvents[i] != want[i] {
				t.Fatalf("WebhookEvents = %v, want %v", c.WebhookEvents, want)
			}
		}
	})
	t.Run("On", func(t *testing.T) {
		env := validEnv()
		env["BROKER_WEBHOOK_URL"] = "https://companion.example/hooks"
		env["BROKER_WEBHOOK_SECRET"] = webhookSecret
		env["BROKER_WEBHOOK_EVENTS"] = " link.refreshed , delivery.delivered,"
		env["BROKER_WEBHOOK_DEADLINE"] = "2h"
		c, err := config.Parse(nil, getenv(env))
		if err != nil {
			t.Fatal(err)
		}
		if c.WebhookSecret.Reveal() != webhookSecret || c.WebhookDeadline != 2*time.Hour ||
			len(c.WebhookEvents) != 2 || c.WebhookEvents[0] != tokens.EventRefreshed || c.WebhookEvents[1] != tokens.EventDelivered {
			t.Fatalf("parsed %+v", c)
		}
	})
	for _, tc := range []struct {
		name, want string
		env        map[string]string
	}{
		{"NoSecret", "BROKER_WEBHOOK_SECRET: required with BROKER_WEBHOOK_URL", map[string]string{"BROKER_WEBHOOK_URL": "https://c.example/h"}},
		{"ShortSecret", "BROKER_WEBHOOK_SECRET: must be whsec_", map[string]string{"BROKER_WEBHOOK_URL": "https://c.example/h",
			"BROKER_WEBHOOK_SECRET": "whsec_" + base64.StdEncoding.EncodeToString([]byte("twenty-three bytes long"))}},
		{"SecretWithoutPrefix", "BROKER_WEBHOOK_SECRET: must be whsec_", map[string]string{"BROKER_WEBHOOK_URL": "https://c.example/h",
			"BROKER_WEBHOOK_SECRET": strings.TrimPrefix(webhookSecret, "whsec_")}},
		{"BadSecretWithoutURL", "BROKER_WEBHOOK_SECRET: must be whsec_", map[string]string{"BROKER_WEBHOOK_SECRET": "whsec_bad"}},
		{"BadURL", "BROKER_WEBHOOK_URL: not an http(s) URL", map[string]string{"BROKER_WEBHOOK_URL": "companion.example", "BROKER_WEBHOOK_SECRET": webhookSecret}},
		{"UnknownEvent", `BROKER_WEBHOOK_EVENTS: unknown event type "link.created"`, map[string]string{"BROKER_WEBHOOK_EVENTS": "link.linked,link.created"}},
		{"NoEvents", "BROKER_WEBHOOK_EVENTS: must name at least one", map[string]string{"BROKER_WEBHOOK_EVENTS": " , "}},
		{"Deadline", "BROKER_WEBHOOK_DEADLINE: must be more than 0", map[string]string{"BROKER_WEBHOOK_DEADLINE": "0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := validEnv()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := config.Parse(nil, getenv(env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want %q", err, tc.want)
			}
			if s := env["BROKER_WEBHOOK_SECRET"]; s != "" && strings.Contains(err.Error(), strings.TrimPrefix(s, "whsec_")) {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
	t.Run("SecretNotInUsage", func(t *testing.T) {
		var b bytes.Buffer
		config.Usage(&b, "broker")
		if !strings.Contains(b.String(), "BROKER_WEBHOOK_SECRET") || strings.Contains(b.String(), "whsec_A") {
			t.Fatalf("usage: %s", b.String())
		}
	})
}
