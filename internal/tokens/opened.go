package tokens

import "sync"

// openedLimit bounds the access tokens an openedTokens keeps: when it is
// full, it starts again empty.
const openedLimit = 16384

// openedTokens remembers the access token that each sealed value opened to,
// so that handing a user's fresh token out again costs a map lookup rather
// than AES-GCM and four allocations: about 3 % of the CPU of a partner-token
// call over gRPC (BenchmarkPartnerToken_GRPC in cmd/broker).
//
// It is keyed by the ciphertext itself, so it is never stale: a refresh
// seals anew, under another ciphertext. An entry names the user it was opened
// for; the same ciphertext found in another user's link is opened, and fails
// there as sealing binds it to its user. It keeps access tokens only, which
// Token hands out anyway and which expire within the hour; refresh tokens are
// opened when they are used, and never kept.
type openedTokens struct {
	mu     sync.RWMutex
	tokens map[string]opened // by ciphertext
}

// opened is what a sealed value opened to.
type opened struct {
	userID, keyID string
	access        Secret
}

// get returns the access token that sealed, in userID's link, opened to.
func (c *openedTokens) get(userID string, sealed Sealed) (Secret, bool) {
	c.mu.RLock()
	o, ok := c.tokens[string(sealed.Ciphertext)]
	c.mu.RUnlock()
	if !ok || o.userID != userID || o.keyID != sealed.KeyID {
		return "", false
	}
	return o.access, true
}

// put remembers that sealed, in userID's link, opened to access.
func (c *openedTokens) put(userID string, sealed Sealed, access Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tokens == nil || len(c.tokens) >= openedLimit {
		c.tokens = make(map[string]opened)
	}
	c.tokens[string(sealed.Ciphertext)] = opened{userID: userID, keyID: sealed.KeyID, access: access}
}
