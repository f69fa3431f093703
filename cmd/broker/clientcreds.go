package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// clientCredentials is the OAuth client-credentials grant (RFC 6749 §4.4) at
// the partner's authorization server, by which an operator command obtains
// its bearer token.
type clientCredentials struct {
	// issuer is the authorization server's issuer URL, where its metadata
	// is found.
	issuer string
	// clientID and secret authenticate the client.
	clientID string
	secret   tokens.Secret
	// scope is the space-separated scopes asked for; empty asks for the
	// client's defaults.
	scope string
	// audience, when set, is sent as the audience parameter (Auth0 needs it).
	audience string
}

// tokenSource finds the token endpoint by discovery and returns a source of
// the grant's access tokens, renewed when they expire, after obtaining the
// first one, so that a refusal shows before any call to the broker. Its
// errors never hold the secret or a token.
func (c clientCredentials) tokenSource(ctx context.Context, client *http.Client) (oauth2.TokenSource, error) {
	endpoint, err := discoverTokenEndpoint(ctx, client, c.issuer)
	if err != nil {
		return nil, err
	}
	cfg := &clientcredentials.Config{
		ClientID:     c.clientID,
		ClientSecret: c.secret.Reveal(),
		TokenURL:     endpoint,
		Scopes:       strings.Fields(c.scope),
	}
	if c.audience != "" {
		cfg.EndpointParams = url.Values{"audience": {c.audience}}
	}
	// The source keeps the context for its later renewals.
	src := cfg.TokenSource(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, client))
	if _, err := src.Token(); err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			err = fmt.Errorf("%s: %s", re.ErrorCode, re.ErrorDescription)
		}
		return nil, fmt.Errorf("client credentials of %q at %s: %w", c.clientID, endpoint, err)
	}
	return src, nil
}

// discoverTokenEndpoint returns the token endpoint of the authorization
// server issuer, from its OpenID Connect discovery document
// (<issuer>/.well-known/openid-configuration), or from its RFC 8414 metadata
// when that has none. The document must name issuer as its issuer, and the
// endpoint must be https, or http on a loopback host.
func discoverTokenEndpoint(ctx context.Context, client *http.Client, issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || !secureURL(u) {
		return "", fmt.Errorf("--issuer %q: want https://HOST[/PATH] (http only on a loopback host)", issuer)
	}
	trimmed := strings.TrimSuffix(issuer, "/")
	// RFC 8414 §3.1: the well-known segment goes between the host and the
	// issuer's path.
	rfc8414 := *u
	rfc8414.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	rfc8414.RawPath = ""
	var problems []string
	for _, doc := range []string{trimmed + "/.well-known/openid-configuration", rfc8414.String()} {
		endpoint, err := readTokenEndpoint(ctx, client, doc, trimmed)
		if err == nil {
			return endpoint, nil
		}
		problems = append(problems, err.Error())
	}
	return "", fmt.Errorf("no token endpoint found for --issuer %s: %s", issuer, strings.Join(problems, "; "))
}

// readTokenEndpoint reads the token endpoint of the metadata document at
// docURL, which must name issuer (without a trailing slash) as its issuer.
func readTokenEndpoint(ctx context.Context, client *http.Client, docURL, issuer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", docURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", docURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", docURL, resp.Status)
	}
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return "", fmt.Errorf("GET %s: not a metadata document: %w", docURL, err)
	}
	if got := strings.TrimSuffix(doc.Issuer, "/"); got != issuer {
		return "", fmt.Errorf("GET %s: issuer %q, want %q", docURL, doc.Issuer, issuer)
	}
	if doc.TokenEndpoint == "" {
		return "", fmt.Errorf("GET %s: no token_endpoint", docURL)
	}
	if t, err := url.Parse(doc.TokenEndpoint); err != nil || t.Host == "" || !secureURL(t) {
		return "", fmt.Errorf("GET %s: token_endpoint %q: want https (http only on a loopback host)", docURL, doc.TokenEndpoint)
	}
	return doc.TokenEndpoint, nil
}

// secureURL reports whether the client secret may be sent to u: https, or
// http to a loopback host.
func secureURL(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		if u.Hostname() == "localhost" {
			return true
		}
		ip := net.ParseIP(u.Hostname())
		return ip != nil && ip.IsLoopback()
	}
	return false
}
