package main

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// devTokens are JWTs of the simulated authorization server, valid for an hour:
// the demo user's for each skill's Alexa client (user for the baby skill,
// homeUser for the home skill), and the partner's backends' by scope.
type devTokens struct{ user, homeUser, tokens, profiles, events, admin string }

func newDevTokens(authz *sim.AuthServer) devTokens {
	return devTokens{
		user:     authz.UserToken(demoUser, babyAlexa, time.Hour),
		homeUser: authz.UserToken(demoUser, homeAlexa, time.Hour),
		tokens:   authz.ClientToken(demoBackend, []string{"broker:tokens"}, time.Hour),
		profiles: authz.ClientToken(demoBackend, []string{"broker:profiles"}, time.Hour),
		events:   authz.ClientToken(demoDeviceCloud, []string{"broker:events"}, time.Hour),
		admin:    authz.ClientToken("operator", []string{"broker:admin"}, time.Hour),
	}
}

// printTryIt prints copy-paste commands for every route of the API, for the
// skills of sandboxSkills.
func printTryIt(p *printer, grpcAddr, base, admin string, tok devTokens) {
	eventID, reportID := uuid.NewString(), uuid.NewString()
	p.line("Try it yourself. Development tokens (valid for an hour):")
	p.line("  export ALEXA_USER_JWT='%s'", tok.user)
	p.line("  export ALEXA_HOME_USER_JWT='%s'", tok.homeUser)
	p.line("  export TOKENS_JWT='%s'", tok.tokens)
	p.line("  export PROFILES_JWT='%s'", tok.profiles)
	p.line("  export EVENTS_JWT='%s'", tok.events)
	p.line("  export ADMIN_JWT='%s'", tok.admin)
	p.line("  export BROKER=%s GRPC_ADDR=%s SIM_ADMIN=%s", base, grpcAddr, admin)
	p.line("(ALEXA_USER_JWT is %s's token issued to Alexa's client of skill %s, %s; ALEXA_HOME_USER_JWT to that of skill %s, %s.)", demoUser, babySkill, babyAlexa, homeSkill, homeAlexa)
	p.line("")
	p.line("HTTP (curl), skill %q:", babySkill)
	p.line(`  curl -s -X POST "$BROKER/api/reciprocal/authorize" -H "Authorization: Bearer $ALEXA_USER_JWT" -d grant_type=reciprocal_authorization_code -d client_id=%s -d code="$(curl -s -X POST "$SIM_ADMIN/codes?user=%s&skill=%s")"`, babyAlexa, demoUser, babySkill)
	p.line(`  curl -s -X POST "$BROKER/v1/partner-token" -H "Authorization: Bearer $TOKENS_JWT" -d '{"user_id":"%s","skill_id":"%s"}'`, demoUser, babySkill)
	p.line(`  curl -s -X POST "$BROKER/v1/profile-reports" -H "Authorization: Bearer $PROFILES_JWT" -d '%s'`, `{"message_id":"`+reportID+`",`+strings.TrimPrefix(jennyReport, "{"))
	p.line(`  curl -s "$BROKER/v1/profile-reports/%s" -H "Authorization: Bearer $PROFILES_JWT"   # the same message_id again: the stored report, not sent twice`, reportID)
	p.line(`  curl -s "$BROKER/v1/links/%s?skill_id=%s" -H "Authorization: Bearer $TOKENS_JWT"`, demoUser, babySkill)
	p.line("")
	p.line("HTTP (curl), skill %q: what the skill's Lambda forwards, then an Alexa event (scope broker:events):", homeSkill)
	p.line(`  curl -s -X POST "$BROKER/v1/smart-home/accept-grant?skill_id=%s" -d '{"directive":{"header":{"namespace":"Alexa.Authorization","name":"AcceptGrant","messageId":"%s","payloadVersion":"3"},"payload":{"grant":{"type":"OAuth2.AuthorizationCode","code":"'"$(curl -s -X POST "$SIM_ADMIN/codes?user=%s&skill=%s")"'"},"grantee":{"type":"BearerToken","token":"'"$ALEXA_HOME_USER_JWT"'"}}}}'`,
		homeSkill, uuid.NewString(), demoUser, homeSkill)
	p.line(`  curl -s -X POST "$BROKER/v1/alexa-events" -H "Authorization: Bearer $EVENTS_JWT" -d '%s'`, thermostatChangeReport(eventID, time.Now()))
	p.line(`  curl -s "$BROKER/v1/alexa-events/%s" -H "Authorization: Bearer $EVENTS_JWT"   # the same messageId again: the stored event, not sent twice`, eventID)
	p.line(`  curl -s "$BROKER/v1/links/%s?skill_id=%s" -H "Authorization: Bearer $TOKENS_JWT"`, demoUser, homeSkill)
	p.line("")
	p.line("HTTP (curl), operators:")
	p.line(`  curl -s "$BROKER/v1/links?page_size=10" -H "Authorization: Bearer $ADMIN_JWT"`)
	p.line(`  curl -s -X POST "$BROKER/v1/links/%s:refresh?skill_id=%s" -H "Authorization: Bearer $ADMIN_JWT"`, demoUser, babySkill)
	p.line(`  curl -s "$BROKER/v1/links/%s/events?skill_id=%s" -H "Authorization: Bearer $ADMIN_JWT"`, demoUser, homeSkill)
	p.line(`  curl -s -X DELETE "$BROKER/v1/links/%s?skill_id=%s" -H "Authorization: Bearer $ADMIN_JWT"`, demoUser, babySkill)
	p.line(`  curl -s "$BROKER/healthz"; curl -s "$BROKER/readyz"; curl -s "$BROKER/metrics" | grep broker_`)
	p.line("")
	p.line("gRPC (grpcurl; scripts/tools.sh builds it into .bin/):")
	p.line(`  grpcurl -plaintext %s list`, grpcAddr)
	p.line(`  grpcurl -plaintext %s grpc.health.v1.Health/Check`, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $TOKENS_JWT" -d '{"user_id":"%s","skill_id":"%s"}' %s broker.v1.PartnerTokenService/GetPartnerToken`, demoUser, babySkill, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $EVENTS_JWT" -d '{"message_id":"%s"}' %s broker.v1.AlexaEventService/GetAlexaEvent`, eventID, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $ADMIN_JWT" -d '{"page_size":10}' %s broker.v1.LinkService/ListLinks`, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $ADMIN_JWT" -d '{"user_id":"%s","skill_id":"%s"}' %s broker.v1.LinkService/RefreshLink`, demoUser, homeSkill, grpcAddr)
	p.line("")
	p.line("Failure handling (the simulators' admin route; or start with --fault):")
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/alexa/429"         # then submit a report: retried after Retry-After`)
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/alexa-events/403"  # then submit an event (new messageId): FAILED, the home link needs re-linking`)
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/lwa/5xx?count=2"    # then refresh: LWA retried within the deadline`)
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/lwa/invalid_grant"  # then refresh: 412, the link needs re-linking`)
	p.line(`  curl -s -X DELETE "$SIM_ADMIN/faults"`)
	p.line("  known faults: %s", sim.FaultNames)
}
