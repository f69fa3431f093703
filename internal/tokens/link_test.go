package tokens_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestLink_Validate(t *testing.T) {
	valid := func() *tokens.Link {
		return &tokens.Link{UserID: "alice", State: tokens.StateLinked, Tokens: tokens.Sealed{Ciphertext: []byte{0}}}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("Validate(valid link) = %v, want nil", err)
	}
	for _, tt := range []struct {
		name   string
		mutate func(*tokens.Link)
	}{
		{"NoUserID", func(l *tokens.Link) { l.UserID = "" }},
		{"ZeroState", func(l *tokens.Link) { l.State = 0 }},
		{"UnknownState", func(l *tokens.Link) { l.State = 99 }},
		{"NoCiphertext", func(l *tokens.Link) { l.Tokens.Ciphertext = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := valid()
			tt.mutate(l)
			assertCode(t, l.Validate(), tokens.EINVALID)
		})
	}
}
