package auth_test

import (
	"context"
	"testing"

	"github.com/reciprocal-broker/broker/internal/auth"
)

func TestPrincipal_HasScope(t *testing.T) {
	p := auth.Principal{Subject: "s", Scopes: []string{"broker:tokens", "broker:profiles"}}
	for _, tc := range []struct {
		scope string
		want  bool
	}{
		{"broker:tokens", true},
		{"broker:profiles", true},
		{"broker:admin", false},
		{"broker", false},
		{"", false},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			if got := p.HasScope(tc.scope); got != tc.want {
				t.Errorf("HasScope(%q) = %v, want %v", tc.scope, got, tc.want)
			}
		})
	}
}

func TestContext(t *testing.T) {
	t.Run("RoundTrip", func(t *testing.T) {
		want := auth.Principal{Subject: "user-1", ClientID: "alexa", Scopes: []string{"a"}}
		got, ok := auth.FromContext(auth.NewContext(context.Background(), want))
		if !ok {
			t.Fatal("FromContext: ok = false, want true")
		}
		if got.Subject != want.Subject || got.ClientID != want.ClientID || !got.HasScope("a") {
			t.Errorf("FromContext = %+v, want %+v", got, want)
		}
	})
	t.Run("Parent", func(t *testing.T) {
		type key struct{}
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
		ctx := auth.NewContext(auth.NewContext(parent, auth.Principal{Subject: "outer"}), auth.Principal{Subject: "inner"})
		if p, _ := auth.FromContext(ctx); p.Subject != "inner" {
			t.Errorf("FromContext: Subject = %q, want the innermost, %q", p.Subject, "inner")
		}
		if got, want := ctx.Value(key{}), "v"; got != want {
			t.Errorf("Value of the parent's key = %v, want %v", got, want)
		}
		cancel()
		if got, want := ctx.Err(), context.Canceled; got != want {
			t.Errorf("Err after the parent's cancel = %v, want %v", got, want)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if p, ok := auth.FromContext(context.Background()); ok {
			t.Errorf("FromContext = %+v, true; want false", p)
		}
	})
}
