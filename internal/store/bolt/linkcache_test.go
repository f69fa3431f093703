package bolt

import (
	"strconv"
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestLinkCache(t *testing.T) {
	link := func(version int64) *tokens.Link {
		return &tokens.Link{UserID: "user-1", Version: version, Tokens: tokens.Sealed{KeyID: "k", Ciphertext: []byte("sealed")}}
	}
	key := linkKey{tokens.DefaultSkillID, "user-1"}
	for _, tt := range []struct {
		name    string
		run     func(c *linkCache) // what happens to the cache
		version int64              // the version get must answer, 0 for none
	}{
		{"PutThenGet", func(c *linkCache) { c.put(key, link(1), c.writesSoFar()) }, 1},
		{"Written", func(c *linkCache) {
			c.put(key, link(1), c.writesSoFar())
			c.beginWrite(key)
			c.endWrite()
		}, 0},
		{"DroppedAsTheWriteBegins", func(c *linkCache) {
			c.put(key, link(1), c.writesSoFar())
			c.beginWrite(key) // version 2 may commit from now on
		}, 0},
		{"ReadDuringAWrite", func(c *linkCache) {
			c.beginWrite(key)
			c.put(key, link(1), c.writesSoFar()) // the read may have seen either version
		}, 0},
		{"ReadRacingAWrite", func(c *linkCache) {
			writes := c.writesSoFar() // a read begins, and sees version 1
			c.beginWrite(key)         // meanwhile version 2 commits
			c.endWrite()
			c.put(key, link(1), writes)
		}, 0},
		{"WriteOfAnotherLinkDuringTheRead", func(c *linkCache) {
			writes := c.writesSoFar()
			c.beginWrite(linkKey{tokens.DefaultSkillID, "user-2"})
			c.endWrite()
			c.put(key, link(1), writes) // not kept either: writes are counted, not named
		}, 0},
		{"AfterAWrite", func(c *linkCache) {
			c.beginWrite(key)
			c.endWrite()
			c.put(key, link(2), c.writesSoFar())
		}, 2},
		{"OtherSkill", func(c *linkCache) {
			c.put(linkKey{"home", "user-1"}, link(1), c.writesSoFar())
		}, 0},
		{"Closed", func(c *linkCache) {
			c.put(key, link(1), c.writesSoFar())
			c.close()
			c.put(key, link(1), c.writesSoFar())
		}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c linkCache
			tt.run(&c)
			got, ok := c.get(key)
			switch {
			case tt.version == 0 && ok:
				t.Errorf("get = version %d, want no link", got.Version)
			case tt.version != 0 && !ok:
				t.Errorf("get = no link, want version %d", tt.version)
			case ok && got.Version != tt.version:
				t.Errorf("get = version %d, want %d", got.Version, tt.version)
			}
		})
	}
}

func TestLinkCache_Copies(t *testing.T) {
	var c linkCache
	key := linkKey{tokens.DefaultSkillID, "user-1"}
	read := &tokens.Link{UserID: "user-1", Tokens: tokens.Sealed{Ciphertext: []byte("sealed")}}
	c.put(key, read, c.writesSoFar())
	read.Tokens.Ciphertext[0] = 'X' // the reader's copy changes
	got, _ := c.get(key)
	got.Tokens.Ciphertext[1] = 'X' // and so does the copy get returned
	if again, _ := c.get(key); string(again.Tokens.Ciphertext) != "sealed" {
		t.Errorf("cached ciphertext = %q, want %q", again.Tokens.Ciphertext, "sealed")
	}
}

func TestLinkCache_Bounded(t *testing.T) {
	var c linkCache
	for i := range linkCacheSize + 10 {
		c.put(linkKey{tokens.DefaultSkillID, strconv.Itoa(i)}, &tokens.Link{}, c.writesSoFar())
	}
	if got := len(c.links); got != linkCacheSize {
		t.Errorf("cache holds %d links, want %d", got, linkCacheSize)
	}
	last := linkKey{tokens.DefaultSkillID, strconv.Itoa(linkCacheSize + 9)}
	if _, ok := c.get(last); !ok {
		t.Error("the link put last is not cached")
	}
}
