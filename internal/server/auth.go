package server

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The rights a bearer token may grant, named by their default scope names;
// policy says which methods each one opens. Options.Scopes gives the names the
// partner's authorization server actually uses (a Cognito scope is
// RESOURCE_SERVER/NAME, an Entra app role a plain word).
const (
	// ScopeTokens lets the companion backend fetch partner tokens and read a
	// user's link.
	ScopeTokens = "broker:tokens"
	// ScopeProfiles lets the companion backend submit and read profile reports.
	ScopeProfiles = "broker:profiles"
	// ScopeAdmin lets operators read, list, refresh and delete links, and read
	// events, stats and pending deliveries.
	ScopeAdmin = "broker:admin"
	// ScopeEvents is the partner's right to report what happens on a user's
	// side: to send Alexa events on the user's behalf, and to delete a link
	// when Alexa tells the skill backend the skill was disabled.
	ScopeEvents = "broker:events"
)

// Scopes are the scope (or app role) names that grant each right. An empty
// field keeps the right's default name (ScopeTokens, ...).
type Scopes struct {
	Tokens, Profiles, Admin, Events string
}

// grantedBy returns policy with every right replaced by the scope name that
// grants it in names.
func grantedBy(names Scopes) map[string][]string {
	rename := map[string]string{ScopeTokens: names.Tokens, ScopeProfiles: names.Profiles, ScopeAdmin: names.Admin, ScopeEvents: names.Events}
	granted := make(map[string][]string, len(policy))
	for method, rights := range policy {
		scopes := make([]string, len(rights))
		for i, right := range rights {
			scopes[i] = right
			if name := rename[right]; name != "" {
				scopes[i] = name
			}
		}
		granted[method] = scopes
	}
	return granted
}

// anyUser marks methods that need an authenticated caller but no scope: the
// reciprocal hand-over, whose user token carries none.
const anyUser = ""

// policy lists, for every broker.v1 method, the scopes of which the caller needs
// one. Methods not listed here and outside grpc.* (health, reflection) are refused.
var policy = map[string][]string{
	"/broker.v1.ReciprocalService/Authorize":              {anyUser},
	"/broker.v1.PartnerTokenService/GetPartnerToken":      {ScopeTokens},
	"/broker.v1.ProfileReportService/SubmitProfileReport": {ScopeProfiles},
	"/broker.v1.ProfileReportService/GetProfileReport":    {ScopeProfiles},
	"/broker.v1.LinkService/GetLink":                      {ScopeTokens, ScopeAdmin},
	"/broker.v1.LinkService/ListLinks":                    {ScopeAdmin},
	"/broker.v1.LinkService/DeleteLink":                   {ScopeAdmin, ScopeEvents},
	"/broker.v1.LinkService/RefreshLink":                  {ScopeAdmin},
	"/broker.v1.EventService/ListLinkEvents":              {ScopeAdmin},
	"/broker.v1.EventService/ListEvents":                  {ScopeAdmin},
	"/broker.v1.EventService/GetStats":                    {ScopeAdmin},
	"/broker.v1.EventService/ListPendingDeliveries":       {ScopeAdmin},
	"/broker.v1.AlexaEventService/SubmitAlexaEvent":       {ScopeEvents},
	"/broker.v1.AlexaEventService/GetAlexaEvent":          {ScopeEvents},
}

// selfAuthenticated lists the methods that authenticate their callers
// themselves, by a token in the request rather than a bearer header:
// AcceptGrant, whose directive carries the user's token as its grantee.
var selfAuthenticated = map[string]bool{
	"/broker.v1.SmartHomeService/AcceptGrant": true,
}

// public reports whether a method answers without credentials: health (with
// readiness) and reflection, which operators and load balancers use.
func public(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/grpc.reflection.") ||
		strings.HasPrefix(method, "/broker.v1.ReadinessService/")
}

// authenticator returns the function that checks the bearer token of every
// call against policy and returns ctx with the caller's Principal. It is the
// one place where gRPC callers and the gateway's HTTP callers are
// authenticated. A right of policy is granted by its name in scopes. The
// function answers EPERMISSION for a method policy does not list or a token
// without one of the method's scopes, EUNAUTHENTICATED without a single
// bearer token, and authn's own errors (EUNAUTHENTICATED, EUNAVAILABLE)
// unchanged.
func authenticator(authn auth.Authenticator, names Scopes) func(ctx context.Context, method string) (context.Context, error) {
	granted := grantedBy(names)
	return func(ctx context.Context, method string) (context.Context, error) {
		if public(method) || selfAuthenticated[method] {
			return ctx, nil
		}
		scopes, ok := granted[method]
		if !ok {
			return nil, tokens.Errorf(tokens.EPERMISSION, "method is not open to callers")
		}
		var raw string
		if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) == 1 {
			raw, _ = auth.ParseBearer(v[0])
		}
		if raw == "" {
			return nil, tokens.Errorf(tokens.EUNAUTHENTICATED, "a bearer token is required")
		}
		p, err := authn.Verify(ctx, raw)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(scopes, anyUser) && !slices.ContainsFunc(scopes, p.HasScope) {
			return nil, tokens.Errorf(tokens.EPERMISSION, "token lacks scope %s", strings.Join(scopes, " or "))
		}
		return auth.NewContext(ctx, p), nil
	}
}
