package auth

import (
	"testing"
	"time"
)

// TestCache_PutAfterClear: a token whose verification began before the key set
// was replaced is not remembered, so a withdrawn key's token cannot slip into
// the cache just after the fetch that withdrew the key emptied it.
func TestCache_PutAfterClear(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newCache(time.Hour)
	p := Principal{Subject: "user-1", ClientID: "alexa-client"}

	gen := c.generation()
	c.clear() // the JWKS was fetched again while the token was being verified
	c.put("token", p, now.Add(time.Hour), now, gen)
	if _, ok := c.get("token", now); ok {
		t.Error("a token verified with the replaced key set was remembered")
	}

	c.put("token", p, now.Add(time.Hour), now, c.generation())
	if got, ok := c.get("token", now); !ok || got.Subject != "user-1" {
		t.Errorf("get = %+v, %v; want the token verified after the fetch", got, ok)
	}
}
