package bolt

import (
	"bytes"
	"sync"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// linkCacheSize bounds the links a file keeps in memory: enough for the users
// whose partner tokens are asked for again and again, about 1 KB each.
const linkCacheSize = 16384

// linkCache keeps the links that GetLink read, so that asking for the same
// user's partner token again costs a map lookup rather than a read
// transaction and a decoding: about a tenth of the CPU of a partner-token
// call over gRPC (BenchmarkPartnerToken_GRPC in cmd/broker). It is exact, not
// merely fresh enough: bbolt's file lock keeps other processes out, so every
// write of a link passes through PutLink or DeleteLink of this file, which
// tell the cache before their transaction begins and after it ends.
//
// Reads never go back in time. A write drops its link before its transaction
// begins, and while any write is under way no read puts a link in the cache:
// a read racing it may have seen either version, and after the commit a
// reader must not find the old one. A read that began before a write and puts
// its link after the write ended is refused by the count of writes, which put
// compares with the count taken before the read.
type linkCache struct {
	mu      sync.RWMutex
	links   map[linkKey]tokens.Link // each owning its ciphertext
	writing int                     // writes under way; for ever 1 or more once closed
	writes  uint64                  // writes ended
}

// linkKey names a link: its skill and user.
type linkKey struct{ skill, user string }

// get returns a copy of the cached link of k, sharing no memory with the cache.
func (c *linkCache) get(k linkKey) (*tokens.Link, bool) {
	c.mu.RLock()
	l, ok := c.links[k]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	l.Tokens.Ciphertext = bytes.Clone(l.Tokens.Ciphertext)
	return &l, true
}

// writesSoFar returns the count of writes to give put after a read.
func (c *linkCache) writesSoFar() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.writes
}

// put keeps a copy of l, read from the file, under k, unless a write is under
// way or one ended since writesSoFar returned writes. When the cache is full,
// it first drops a link (whichever the map yields first).
func (c *linkCache) put(k linkKey, l *tokens.Link, writes uint64) {
	cached := *l
	cached.Tokens.Ciphertext = bytes.Clone(l.Tokens.Ciphertext)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing > 0 || c.writes != writes {
		return
	}
	if c.links == nil {
		c.links = make(map[linkKey]tokens.Link)
	}
	if _, ok := c.links[k]; !ok && len(c.links) >= linkCacheSize {
		for drop := range c.links {
			delete(c.links, drop)
			break
		}
	}
	c.links[k] = cached
}

// beginWrite drops the link of k before a transaction that writes it begins;
// endWrite must follow when the transaction has ended, committed or not.
func (c *linkCache) beginWrite(k linkKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.links, k)
	c.writing++
}

// endWrite ends what beginWrite began.
func (c *linkCache) endWrite() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing--
	c.writes++
}

// close drops every link and keeps the cache empty from then on, for a file
// being closed.
func (c *linkCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.links)
	c.writing++
}
