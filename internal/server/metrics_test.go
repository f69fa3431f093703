package server

import "testing"

func TestHTTPMethodLabel(t *testing.T) {
	for _, tt := range []struct{ method, want string }{
		{"GET", "get"}, {"POST", "post"}, {"DELETE", "delete"}, {"PATCH", "patch"},
		{"get", "get"}, {"Get", "unknown"}, {"BREW", "unknown"}, {"", "unknown"},
	} {
		if got := httpMethodLabel(tt.method); got != tt.want {
			t.Errorf("httpMethodLabel(%q) = %q, want %q", tt.method, got, tt.want)
		}
	}
}
