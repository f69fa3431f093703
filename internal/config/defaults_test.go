package config_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/reciprocal-broker/broker/internal/alexa"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/lwa"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/server"
	"github.com/reciprocal-broker/broker/internal/skills"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestDefaults_MatchOwners is the drift guard: each default the broker's
// settings give equals the constant of the package that owns the value, so
// that `broker --help` and the owners cannot tell two stories. (The listen
// addresses, the store, the background-refresh window and the log level have
// no owner's constant: they are the configuration's own. Without
// BROKER_SKILLS_FILE, the single skill has the id skills owns.)
func TestDefaults_MatchOwners(t *testing.T) {
	c, err := config.Parse(nil, getenv(validEnv()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"BROKER_LWA_TOKEN_URL", c.LWATokenURL, lwa.DefaultTokenURL},
		{"BROKER_ALEXA_API_URL", c.AlexaAPIURL, alexa.DefaultBaseURL},
		{"BROKER_REFRESH_AHEAD", c.RefreshAhead, tokens.DefaultRefreshAhead},
		{"BROKER_REPORT_DEADLINE", c.ReportDeadline, reports.DefaultDeadline},
		{"BROKER_REPORT_RETENTION", c.ReportRetention, reports.DefaultRetention},
		{"BROKER_EVENT_RETENTION", c.EventRetention, tokens.DefaultEventRetention},
		{"BROKER_RESEAL_RATE", c.ResealRate, tokens.DefaultResealRate},
		{"BROKER_JWT_PROFILE", c.JWTProfile, auth.DefaultProfile},
		{"BROKER_JWT_JWKS_REFRESH", c.JWTJWKSRefresh, auth.DefaultJWKSRefreshInterval},
		{"BROKER_SCOPE_TOKENS", c.ScopeTokens, server.ScopeTokens},
		{"BROKER_SCOPE_PROFILES", c.ScopeProfiles, server.ScopeProfiles},
		{"BROKER_SCOPE_ADMIN", c.ScopeAdmin, server.ScopeAdmin},
		{"BROKER_SCOPE_EVENTS", c.ScopeEvents, server.ScopeEvents},
		{"BROKER_WEBHOOK_DEADLINE", c.WebhookDeadline, events.DefaultDeadline},
		{"BROKER_WEBHOOK_EVENTS", fmt.Sprint(c.WebhookEvents), fmt.Sprint(events.DefaultTypes)},
		{"BROKER_AUTHORIZE_RATE_USER", reciprocal.Rate(c.AuthorizeRateUser), reciprocal.DefaultUserRate},
		{"BROKER_AUTHORIZE_RATE_CLIENT", reciprocal.Rate(c.AuthorizeRateClient), reciprocal.DefaultClientRate},
		{"BROKER_SKILLS_FILE", fmt.Sprint(len(c.Skills), " ", c.Skills[0].ID), fmt.Sprint(1, " ", skills.Default)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("%s defaults to %v, its owner's constant is %v", tc.name, tc.got, tc.want)
			}
		})
	}
}

// TestAlexaRegion_MatchesOwner: BROKER_ALEXA_REGION accepts every region the
// alexa package knows (TestParse_Invalid refuses one it does not).
func TestAlexaRegion_MatchesOwner(t *testing.T) {
	for _, region := range slices.Sorted(maps.Keys(alexa.DefaultRegions())) {
		t.Run(region, func(t *testing.T) {
			env := validEnv()
			env["BROKER_ALEXA_REGION"] = region
			c, err := config.Parse(nil, getenv(env))
			if err != nil {
				t.Fatalf("BROKER_ALEXA_REGION=%s refused: %v", region, err)
			}
			if c.AlexaRegion != region {
				t.Errorf("AlexaRegion = %q, want %q", c.AlexaRegion, region)
			}
		})
	}
}
