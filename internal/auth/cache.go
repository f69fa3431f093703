package auth

import (
	"sync"
	"time"
)

// Defaults of the verified-token cache.
const (
	// DefaultCacheTTL bounds how long a verified token is taken on trust
	// without checking it again. A key withdrawn from the JWKS is not bounded
	// by it: the cache is emptied at every fetch of the JWKS, so a withdrawn
	// key's tokens stop being honoured, cached or not, at the first fetch after
	// the withdrawal (Config.JWKSRefreshInterval).
	DefaultCacheTTL = time.Minute
	// cacheSize bounds the number of tokens remembered.
	cacheSize = 10_000
)

// cache remembers verified tokens, so that a caller presenting the same token
// call after call is checked once per TTL instead of once per call. Entries are
// keyed by the whole token, compared byte for byte, so one token cannot be
// mistaken for another; they never outlive the token's exp, and are forgotten
// whenever the JWKS is fetched again, so that a withdrawn key's tokens stop
// being honoured with the fetch that withdraws it. A verification that began
// before such a fetch is not remembered (see generation). It is safe for
// concurrent use.
type cache struct {
	ttl time.Duration
	mu  sync.RWMutex
	gen uint64 // counts the clears
	m   map[string]cached
}

// cached is one verified token's principal and the end of its stay.
type cached struct {
	p     Principal
	until time.Time
}

// newCache returns an empty cache that remembers a token for at most ttl.
func newCache(ttl time.Duration) *cache {
	return &cache{ttl: ttl, m: make(map[string]cached)}
}

// clear forgets every token, as when the signing keys change. A nil cache
// (caching off) has nothing to forget.
func (c *cache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.gen++
	c.mu.Unlock()
}

// generation returns the number of clears so far. A verification reads it
// before it looks up the key, and hands it to put: a token verified with a key
// set that was replaced meanwhile is then not remembered.
func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// get returns the principal of a token verified before and still valid at now.
func (c *cache) get(key string, now time.Time) (Principal, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

// put remembers a verified token until the earlier of its exp and now+TTL,
// unless the cache was cleared since generation returned gen.
func (c *cache) put(key string, p Principal, exp, now time.Time, gen uint64) {
	until := now.Add(c.ttl)
	if exp.Before(until) {
		until = exp
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= cacheSize {
		for k, e := range c.m { // drop the stale, then arbitrary entries
			if !now.Before(e.until) || len(c.m) >= cacheSize/2 {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = cached{p: p, until: until}
}
