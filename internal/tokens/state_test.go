package tokens_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestParseState(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		for _, s := range []tokens.State{tokens.StateLinked, tokens.StateRelinkRequired} {
			got, err := tokens.ParseState(s.String())
			if err != nil || got != s {
				t.Errorf("ParseState(%q) = %v, %v; want %v, nil", s.String(), got, err, s)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("%v.Validate() = %v, want nil", s, err)
			}
		}
	})

	t.Run("Unknown", func(t *testing.T) {
		for _, name := range []string{"", "UNKNOWN", "linked", "LINKED "} {
			_, err := tokens.ParseState(name)
			assertCode(t, err, tokens.EINVALID)
		}
		for _, s := range []tokens.State{0, 3, -1} {
			if got, want := s.String(), "UNKNOWN"; got != want {
				t.Errorf("State(%d).String() = %q, want %q", s, got, want)
			}
			assertCode(t, s.Validate(), tokens.EINVALID)
		}
	})
}
