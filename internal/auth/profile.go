package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Profile says where one kind of authorization server puts, in its access
// tokens, what the broker reads beyond sub: the OAuth client the token was
// issued to and the scopes (or app roles) it grants. Partners run Cognito,
// Auth0, Okta, Keycloak or Entra ID rather than a textbook RFC 9068 server; a
// profile reads their tokens as they are. Only the profile's claims count: a
// claim the profile does not name grants nothing.
type Profile struct {
	// Name is the profile's name, as BROKER_JWT_PROFILE spells it.
	Name string
	// ClientClaims are the claims that may name the client, in order: the
	// first one present is read, and a token with none of them is refused.
	ClientClaims []string
	// ScopeClaims are the claims whose scopes are joined into the
	// Principal's: each a space-separated string or a list of strings. A token
	// may carry none of them; it then has no scope.
	ScopeClaims []string
	// NoAudience is true for servers whose access tokens carry no aud claim
	// (Cognito): aud is then checked only when an audience is configured, and
	// a list of accepted clients is required instead.
	NoAudience bool
	// TokenUse, when set, is the value the token_use claim must have (Cognito
	// marks its access tokens "access" and its ID tokens "id").
	TokenUse string
}

// DefaultProfile is the name of the profile of RFC 9068 access tokens, used
// when Config.Profile is empty.
const DefaultProfile = "rfc9068"

// profiles are the profiles the broker knows, by name.
var profiles = []Profile{
	{Name: "rfc9068", ClientClaims: []string{"client_id"}, ScopeClaims: []string{"scope"}},
	{Name: "cognito", ClientClaims: []string{"client_id"}, ScopeClaims: []string{"scope"}, NoAudience: true, TokenUse: "access"},
	{Name: "auth0", ClientClaims: []string{"azp", "client_id"}, ScopeClaims: []string{"scope", "permissions"}},
	{Name: "okta", ClientClaims: []string{"cid"}, ScopeClaims: []string{"scp"}},
	{Name: "keycloak", ClientClaims: []string{"azp"}, ScopeClaims: []string{"scope"}},
	{Name: "entra", ClientClaims: []string{"azp", "appid"}, ScopeClaims: []string{"scp", "roles"}},
}

// ProfileNames returns the names of the profiles the broker knows, the default
// first.
func ProfileNames() []string {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	return names
}

// LookupProfile returns the profile called name ("" is DefaultProfile), and
// false when the broker knows no such profile.
func LookupProfile(name string) (Profile, bool) {
	if name == "" {
		name = DefaultProfile
	}
	i := slices.IndexFunc(profiles, func(p Profile) bool { return p.Name == name })
	if i < 0 {
		return Profile{}, false
	}
	p := profiles[i]
	p.ClientClaims, p.ScopeClaims = slices.Clone(p.ClientClaims), slices.Clone(p.ScopeClaims)
	return p, true
}

// registeredClaims are the claims the verifier itself checks (RFC 7519 §4.1);
// none of them can name a client or carry scopes.
var registeredClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti"}

// CheckClaimName returns an error when name cannot be a client or scope claim:
// empty, holding white space or a comma, or one of the registered claims the
// verifier checks itself (iss, sub, aud, exp, nbf, iat, jti).
func CheckClaimName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("a claim name is empty")
	case strings.ContainsFunc(name, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' }):
		return fmt.Errorf("claim name %q holds white space or a comma", name)
	case slices.Contains(registeredClaims, name):
		return fmt.Errorf("%s is a registered claim, not one that names a client or scopes", name)
	}
	return nil
}

// principal reads the Principal of a token whose signature and registered
// claims were verified, as p says, and refuses it when it does not fit p: no
// client claim, a client not in clients (when clients is not empty), a client
// or scope claim of the wrong JSON type, or a token_use other than p.TokenUse.
func (p Profile) principal(c *claims, clients []string) (Principal, *refusal) {
	if p.TokenUse != "" {
		use, present, ok := c.str("token_use")
		switch {
		case !present:
			return Principal{}, &refusal{reason: "token has no token_use claim", claim: "token_use"}
		case !ok:
			return Principal{}, &refusal{reason: "token claim token_use is not a string", claim: "token_use"}
		case use != p.TokenUse:
			return Principal{}, &refusal{reason: fmt.Sprintf("token is not an %s token (token_use)", p.TokenUse), claim: "token_use"}
		}
	}
	pr := Principal{Subject: c.sub}
	for _, name := range p.ClientClaims {
		v, present, ok := c.str(name)
		if !present || (ok && v == "") {
			continue
		}
		if !ok {
			return Principal{}, &refusal{reason: "token claim " + name + " is not a string", claim: name}
		}
		pr.ClientID = v
		break
	}
	if pr.ClientID == "" {
		names := strings.Join(p.ClientClaims, " or ")
		return Principal{}, &refusal{reason: "token has no client claim (" + names + ")", claim: names}
	}
	if len(clients) > 0 && !slices.Contains(clients, pr.ClientID) {
		return Principal{}, &refusal{reason: "token client is not accepted", claim: p.clientClaim(c), client: pr.ClientID}
	}
	for _, name := range p.ScopeClaims {
		scopes, ok := c.scopes(name)
		if !ok {
			return Principal{}, &refusal{reason: "token claim " + name + " is neither a string nor a list of strings", claim: name}
		}
		pr.Scopes = append(pr.Scopes, scopes...)
	}
	return pr, nil
}

// clientClaim returns the name of the client claim that c carries.
func (p Profile) clientClaim(c *claims) string {
	for _, name := range p.ClientClaims {
		if v, _, ok := c.str(name); ok && v != "" {
			return name
		}
	}
	return ""
}
