package server

import (
	"strings"
	"testing"
)

func TestValidRequestID(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"A.b_C-9", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"with space", false},
		{"line\nbreak", false},
		{`quote"`, false},
		{"é", false},
	} {
		if got := validRequestID(tt.id); got != tt.want {
			t.Errorf("validRequestID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

func TestWithRequestID(t *testing.T) {
	ctx, id := withRequestID(t.Context(), "bad id")
	if !validRequestID(id) || !strings.HasPrefix(id, requestIDPrefix) {
		t.Errorf("new id %q is not one of this process's", id)
	}
	if got := RequestID(ctx); got != id {
		t.Errorf("RequestID = %q, want %q", got, id)
	}
	if _, next := withRequestID(t.Context(), ""); next == id {
		t.Errorf("two new ids are both %q", id)
	}
}
