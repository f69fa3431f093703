package tokens_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// stateLister is a store with a LinkStateLister that records its calls.
type stateLister struct {
	*memStore
	calls []tokens.State
}

var _ tokens.LinkStateLister = (*stateLister)(nil)

func (s *stateLister) ListLinksInState(ctx context.Context, state tokens.State, cursor string, limit int) (tokens.LinkPage, error) {
	s.calls = append(s.calls, state)
	return tokens.LinkPage{Links: []*tokens.Link{{UserID: "from-index", State: state}}}, nil
}

// allPages lists every link of svc that filter matches, limit at a time.
func allPages(tb testing.TB, svc *tokens.Service, filter tokens.LinkFilter, limit int) []string {
	tb.Helper()
	var ids []string
	cursor := ""
	for range 100 {
		page, err := svc.Links(tb.Context(), filter, cursor, limit)
		if err != nil {
			tb.Fatalf("Links(%+v, %q) error = %v", filter, cursor, err)
		}
		for _, l := range page.Links {
			if filter.State != 0 && l.State != filter.State {
				tb.Errorf("Links(%+v) returned %q in state %v", filter, l.UserID, l.State)
			}
			ids = append(ids, l.UserID)
		}
		if cursor = page.Next; cursor == "" {
			return ids
		}
	}
	tb.Fatalf("Links(%+v) did not end", filter)
	return nil
}

func TestService_LinksByState(t *testing.T) {
	h := newHarness(t)
	users := []string{"a", "b", "c", "d", "e", "f", "g"}
	for _, u := range users {
		h.mustLink(t, u)
	}
	for _, u := range []string{"b", "c", "f"} {
		if err := h.svc.RequireRelink(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		state tokens.State
		limit int
		want  []string
	}{
		{"Relink", tokens.StateRelinkRequired, 0, []string{"b", "c", "f"}},
		{"RelinkPaged", tokens.StateRelinkRequired, 1, []string{"b", "c", "f"}},
		{"RelinkPagedByTwo", tokens.StateRelinkRequired, 2, []string{"b", "c", "f"}},
		{"Linked", tokens.StateLinked, 3, []string{"a", "d", "e", "g"}},
		{"Every", 0, 2, users},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := allPages(t, h.svc, tokens.LinkFilter{State: tc.state}, tc.limit)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user ids (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("LastPageFull", func(t *testing.T) {
		// The page that takes the last matching link names no next page when
		// no link follows it.
		page, err := h.svc.Links(t.Context(), tokens.LinkFilter{State: tokens.StateLinked}, "e", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Links) != 1 || page.Links[0].UserID != "g" || page.Next != "" {
			t.Errorf("Links after e = %+v, want g and no next page", page)
		}
	})

	t.Run("UnknownState", func(t *testing.T) {
		_, err := h.svc.Links(t.Context(), tokens.LinkFilter{State: 9}, "", 0)
		assertCode(t, err, tokens.EINVALID)
	})

	t.Run("StoreIndex", func(t *testing.T) {
		store := &stateLister{memStore: h.store}
		svc := h.newServiceOf(store)
		got := allPages(t, svc, tokens.LinkFilter{State: tokens.StateRelinkRequired}, 0)
		if diff := cmp.Diff([]string{"from-index"}, got); diff != "" {
			t.Errorf("user ids (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]tokens.State{tokens.StateRelinkRequired}, store.calls); diff != "" {
			t.Errorf("ListLinksInState calls (-want +got):\n%s", diff)
		}
	})
}

func TestService_LinksByPrefix(t *testing.T) {
	h := newHarness(t)
	users := []string{"a", "ab", "abc", "abd", "ac", "b", "dd", "dé", "dé-1", "dé-2", "dz", "e\U0010FFFF"}
	for _, u := range users {
		h.mustLink(t, u)
	}
	for _, u := range []string{"abc", "dé-1"} {
		if err := h.svc.RequireRelink(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		filter tokens.LinkFilter
		limit  int
		want   []string
	}{
		{"One", tokens.LinkFilter{UserIDPrefix: "ab"}, 0, []string{"ab", "abc", "abd"}},
		{"Paged", tokens.LinkFilter{UserIDPrefix: "ab"}, 1, []string{"ab", "abc", "abd"}},
		{"Whole", tokens.LinkFilter{UserIDPrefix: "b"}, 0, []string{"b"}},
		{"None", tokens.LinkFilter{UserIDPrefix: "abz"}, 0, nil},
		{"NonASCII", tokens.LinkFilter{UserIDPrefix: "dé"}, 2, []string{"dé", "dé-1", "dé-2"}},
		{"GreatestRune", tokens.LinkFilter{UserIDPrefix: "e\U0010FFFF"}, 0, []string{"e\U0010FFFF"}},
		{"AndState", tokens.LinkFilter{UserIDPrefix: "dé", State: tokens.StateLinked}, 1, []string{"dé", "dé-2"}},
		{"AndRelink", tokens.LinkFilter{UserIDPrefix: "a", State: tokens.StateRelinkRequired}, 0, []string{"abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := allPages(t, h.svc, tc.filter, tc.limit)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("user ids (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("StoreIndex", func(t *testing.T) {
		store := &stateLister{memStore: h.store}
		svc := h.newServiceOf(store)
		// The index's answer is checked against the prefix.
		if got := allPages(t, svc, tokens.LinkFilter{State: tokens.StateLinked, UserIDPrefix: "from"}, 0); !cmp.Equal(got, []string{"from-index"}) {
			t.Errorf("user ids = %q, want from-index", got)
		}
		if got := allPages(t, svc, tokens.LinkFilter{State: tokens.StateLinked, UserIDPrefix: "zz"}, 0); len(got) != 0 {
			t.Errorf("user ids = %q, want none", got)
		}
	})
}

func TestPrefixStart(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"", ""},
		{"b", "a\U0010FFFF"},
		{"ab", "aa\U0010FFFF"},
		{"dé", "d\u00e8\U0010FFFF"},
		{"\x01", ""},
		{"a\x01", "a"},
		{"a\ue000", "a\ud7ff\U0010FFFF"},
		{"a\xff", "a"},
	} {
		start := tokens.PrefixStart(tc.prefix)
		if start != tc.want {
			t.Errorf("PrefixStart(%q) = %q, want %q", tc.prefix, start, tc.want)
		}
		if tc.prefix != "" && start >= tc.prefix {
			t.Errorf("PrefixStart(%q) = %q, not below the prefix", tc.prefix, start)
		}
	}
}
