package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// testClaimCode checks who owns a code after a sequence of claims, one claim
// of many racing claimers, and the refusal of empty arguments.
func testClaimCode(t *testing.T, open func(t *testing.T) tokens.Store) {
	// The store compares expiry times with its own clock; an hour either side of
	// the test's clock is far from any skew.
	later := func() time.Time { return time.Now().Add(time.Hour) }
	earlier := func() time.Time { return time.Now().Add(-time.Hour) }

	type claim struct {
		code, user string
		expires    func() time.Time
		wantOwner  string
	}
	for _, tt := range []struct {
		name   string
		claims []claim
	}{
		{"First", []claim{
			{"code-1", "alice", later, "alice"},
		}},
		{"OtherUser", []claim{
			{"code-1", "alice", later, "alice"},
			{"code-1", "bob", later, "alice"},
		}},
		{"SameUser", []claim{
			{"code-1", "alice", later, "alice"},
			{"code-1", "alice", later, "alice"},
			{"code-1", "bob", later, "alice"},
			{"code-1", "alice", later, "alice"},
		}},
		{"Expired", []claim{
			{"code-1", "alice", earlier, "alice"},
			{"code-1", "bob", later, "bob"},
			{"code-1", "alice", later, "bob"},
		}},
		{"ExpiredSameUser", []claim{
			{"code-1", "alice", earlier, "alice"},
			{"code-1", "alice", later, "alice"},
			{"code-1", "bob", later, "alice"},
		}},
		{"SeparateCodes", []claim{
			{"code-1", "alice", later, "alice"},
			{"code-2", "bob", later, "bob"},
			{"code-1", "bob", later, "alice"},
			{"code-2", "alice", later, "bob"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			for i, c := range tt.claims {
				owner, err := s.ClaimCode(t.Context(), c.code, c.user, c.expires())
				if err != nil {
					t.Fatalf("claim %d: ClaimCode(%q, %q) error = %v", i, c.code, c.user, err)
				}
				if got, want := owner, c.wantOwner; got != want {
					t.Errorf("claim %d: ClaimCode(%q, %q) owner = %q, want %q", i, c.code, c.user, got, want)
				}
			}
		})
	}

	t.Run("Concurrent", func(t *testing.T) {
		const claimers = 20
		s := open(t)
		owners := make([]string, claimers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range claimers {
			wg.Go(func() {
				<-start
				owner, err := s.ClaimCode(t.Context(), "code-1", fmt.Sprintf("user-%02d", i), later())
				if err != nil {
					t.Errorf("claimer %d: ClaimCode error = %v", i, err)
				}
				owners[i] = owner
			})
		}
		close(start)
		wg.Wait()
		for i, owner := range owners {
			if owner != owners[0] {
				t.Errorf("claimer %d got owner %q, claimer 0 got %q: want one owner", i, owner, owners[0])
			}
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range []struct {
			name, code, user string
		}{
			{"NoCodeHash", "", "alice"},
			{"NoUserID", "code-1", ""},
			{"Neither", "", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				_, err := s.ClaimCode(t.Context(), tt.code, tt.user, later())
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("ClaimCode(%q, %q) error = %v (code %q), want code %q", tt.code, tt.user, err, got, want)
				}
				assertRule(t, err, tokens.ValidateClaim(tt.code, tt.user))
				if tt.code == "" {
					return
				}
				// The refused claim recorded nothing: the code is still free.
				if owner, err := s.ClaimCode(t.Context(), tt.code, "bob", later()); err != nil || owner != "bob" {
					t.Errorf("ClaimCode(%q, bob) after the refused claim = %q, %v; want bob, nil", tt.code, owner, err)
				}
			})
		}
	})
}
