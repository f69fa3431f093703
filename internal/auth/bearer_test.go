package auth_test

import (
	"testing"

	"github.com/reciprocal-broker/broker/internal/auth"
)

func TestParseBearer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		want   string
		ok     bool
	}{
		{"Bearer", "Bearer abc.def.ghi", "abc.def.ghi", true},
		{"LowerCase", "bearer abc.def.ghi", "abc.def.ghi", true},
		{"UpperCase", "BEARER abc", "abc", true},
		{"Token68Chars", "Bearer aZ09-._~+/==", "aZ09-._~+/==", true},
		{"ExtraSpaces", "Bearer   abc", "abc", true},
		{"SurroundingSpace", "  Bearer abc  ", "abc", true},
		{"Empty", "", "", false},
		{"SchemeOnly", "Bearer", "", false},
		{"SchemeAndSpace", "Bearer ", "", false},
		{"OnlyPadding", "Bearer ==", "", false},
		{"TwoTokens", "Bearer abc def", "", false},
		{"Basic", "Basic YWxleGE6c2VjcmV0", "", false},
		{"NoSpace", "Bearerabc", "", false},
		{"OtherScheme", "Token abc", "", false},
		{"Comma", "Bearer abc,def", "", false},
		{"Tab", "Bearer\tabc", "", false},
		{"PaddingInside", "Bearer ab=c", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := auth.ParseBearer(tc.header)
			if got != tc.want || ok != tc.ok {
				t.Errorf("ParseBearer(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}
