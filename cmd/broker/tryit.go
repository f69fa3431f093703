package main

import (
	"time"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// devTokens are JWTs of the simulated authorization server, valid for an hour.
type devTokens struct{ user, tokens, profiles, admin string }

func newDevTokens(authz *sim.AuthServer) devTokens {
	return devTokens{
		user:     authz.UserToken(demoUser, demoAlexa, time.Hour),
		tokens:   authz.ClientToken(demoBackend, []string{"broker:tokens"}, time.Hour),
		profiles: authz.ClientToken(demoBackend, []string{"broker:profiles"}, time.Hour),
		admin:    authz.ClientToken("operator", []string{"broker:admin"}, time.Hour),
	}
}

// printTryIt prints copy-paste commands for every route of the API.
func printTryIt(p *printer, grpcAddr, base, admin string, tok devTokens) {
	p.line("Try it yourself. Development tokens (valid for an hour):")
	p.line("  export ALEXA_USER_JWT='%s'", tok.user)
	p.line("  export TOKENS_JWT='%s'", tok.tokens)
	p.line("  export PROFILES_JWT='%s'", tok.profiles)
	p.line("  export ADMIN_JWT='%s'", tok.admin)
	p.line("  export BROKER=%s SIM_ADMIN=%s", base, admin)
	p.line("")
	p.line("HTTP (curl):")
	p.line(`  curl -s -X POST "$BROKER/api/reciprocal/authorize" -H "Authorization: Bearer $ALEXA_USER_JWT" -d grant_type=reciprocal_authorization_code -d client_id=%s -d code="$(curl -s -X POST "$SIM_ADMIN/codes?user=%s")"`, demoAlexa, demoUser)
	p.line(`  curl -s -X POST "$BROKER/v1/partner-token" -H "Authorization: Bearer $TOKENS_JWT" -d '{"user_id":"%s"}'`, demoUser)
	p.line(`  curl -s -X POST "$BROKER/v1/profile-reports" -H "Authorization: Bearer $PROFILES_JWT" -d '%s'`, jennyReport)
	p.line(`  curl -s "$BROKER/v1/profile-reports/MESSAGE_ID" -H "Authorization: Bearer $PROFILES_JWT"`)
	p.line(`  curl -s "$BROKER/v1/links/%s" -H "Authorization: Bearer $TOKENS_JWT"`, demoUser)
	p.line(`  curl -s "$BROKER/v1/links?page_size=10" -H "Authorization: Bearer $ADMIN_JWT"`)
	p.line(`  curl -s -X POST "$BROKER/v1/links/%s:refresh" -H "Authorization: Bearer $ADMIN_JWT"`, demoUser)
	p.line(`  curl -s -X DELETE "$BROKER/v1/links/%s" -H "Authorization: Bearer $ADMIN_JWT"`, demoUser)
	p.line(`  curl -s "$BROKER/healthz"; curl -s "$BROKER/readyz"; curl -s "$BROKER/metrics" | grep broker_`)
	p.line("")
	p.line("gRPC (grpcurl; scripts/tools.sh builds it into .bin/):")
	p.line(`  grpcurl -plaintext %s list`, grpcAddr)
	p.line(`  grpcurl -plaintext %s grpc.health.v1.Health/Check`, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $TOKENS_JWT" -d '{"user_id":"%s"}' %s broker.v1.PartnerTokenService/GetPartnerToken`, demoUser, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $ADMIN_JWT" -d '{"page_size":10}' %s broker.v1.LinkService/ListLinks`, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $ADMIN_JWT" -d '{"user_id":"%s"}' %s broker.v1.LinkService/RefreshLink`, demoUser, grpcAddr)
	p.line("")
	p.line("Failure handling (the simulators' admin route; or start with --fault):")
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/alexa/429"      # then submit a report: retried after Retry-After`)
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/lwa/5xx?count=2" # then refresh: LWA retried within the deadline`)
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/lwa/invalid_grant" # then refresh: 412, the link needs re-linking`)
	p.line(`  curl -s -X DELETE "$SIM_ADMIN/faults"`)
	p.line("  known faults: %s", sim.FaultNames)
}
