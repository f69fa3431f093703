package sim

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// ClientCredentialsTTL is how long the access tokens of the token endpoint
// stay valid.
const ClientCredentialsTTL = time.Hour

// clientCredentials are the clients an AuthServer lets use its token
// endpoint, and how many requests that endpoint answered.
type clientCredentials struct {
	mu      sync.Mutex
	clients map[string]registeredClient
	hits    int
}

// registeredClient is one client of the token endpoint.
type registeredClient struct {
	secret string
	scopes []string
}

// RegisterClient lets clientID obtain access tokens at TokenPath with the
// client-credentials grant, authenticating with secret (HTTP Basic, or
// client_id and client_secret in the form), for any of scopes: the token
// carries the scopes asked for, or all of them when the request names none.
// Registering a client again replaces its secret and scopes.
func (s *AuthServer) RegisterClient(clientID, secret string, scopes []string) {
	s.cc.mu.Lock()
	defer s.cc.mu.Unlock()
	if s.cc.clients == nil {
		s.cc.clients = map[string]registeredClient{}
	}
	s.cc.clients[clientID] = registeredClient{secret: secret, scopes: slices.Clone(scopes)}
}

// TokenRequests returns how many requests the token endpoint has answered,
// refused ones included.
func (s *AuthServer) TokenRequests() int {
	s.cc.mu.Lock()
	defer s.cc.mu.Unlock()
	return s.cc.hits
}

// serveClientCredentials answers the client-credentials grant (RFC 6749
// §4.4) at TokenPath, for a POST whose form serveToken has parsed: a JSON
// access token answer, or an RFC 6749 §5.2 error.
func (s *AuthServer) serveClientCredentials(w http.ResponseWriter, r *http.Request) {
	s.cc.mu.Lock()
	s.cc.hits++
	s.cc.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-encoded before Basic encoding.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
		if r.PostForm.Has("client_secret") {
			oauthError(w, http.StatusBadRequest, "invalid_request", "client credentials both in the header and in the form")
			return
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	s.cc.mu.Lock()
	client, ok := s.cc.clients[id]
	s.cc.mu.Unlock()
	if !ok || id == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(client.secret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		}
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	for _, sc := range scopes {
		if !slices.Contains(client.scopes, sc) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "scope "+sc+" is not granted to the client")
			return
		}
	}
	if len(scopes) == 0 {
		scopes = client.scopes
	}
	token := s.ClientToken(id, scopes, ClientCredentialsTTL)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_in":   int(ClientCredentialsTTL / time.Second),
		"scope":        strings.Join(scopes, " "),
	})
}

// oauthError writes an RFC 6749 §5.2 error answer, not to be cached, as the
// token endpoint's answers are not.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
