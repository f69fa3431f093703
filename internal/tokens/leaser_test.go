package tokens_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestValidateLease(t *testing.T) {
	if err := tokens.ValidateLease("alice", "owner-1"); err != nil {
		t.Errorf("ValidateLease(alice, owner-1) = %v, want nil", err)
	}
	for _, tt := range []struct{ name, userID, owner string }{
		{"NoUserID", "", "owner-1"},
		{"NoOwner", "alice", ""},
		{"Neither", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertCode(t, tokens.ValidateLease(tt.userID, tt.owner), tokens.EINVALID)
		})
	}
}
