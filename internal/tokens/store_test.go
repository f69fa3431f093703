package tokens_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestPageSize(t *testing.T) {
	for _, tt := range []struct{ limit, want int }{
		{-1, tokens.DefaultPageSize},
		{0, tokens.DefaultPageSize},
		{1, 1},
		{tokens.MaxPageSize, tokens.MaxPageSize},
		{tokens.MaxPageSize + 1, tokens.MaxPageSize},
	} {
		if got := tokens.PageSize(tt.limit); got != tt.want {
			t.Errorf("PageSize(%d) = %d, want %d", tt.limit, got, tt.want)
		}
	}
}

func TestValidateClaim(t *testing.T) {
	if err := tokens.ValidateClaim("code-1", "alice"); err != nil {
		t.Errorf("ValidateClaim(code-1, alice) = %v, want nil", err)
	}
	for _, tt := range []struct{ name, codeHash, userID string }{
		{"NoCodeHash", "", "alice"},
		{"NoUserID", "code-1", ""},
		{"Neither", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertCode(t, tokens.ValidateClaim(tt.codeHash, tt.userID), tokens.EINVALID)
		})
	}
}
