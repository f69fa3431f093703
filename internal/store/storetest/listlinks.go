package storetest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func testListLinks(t *testing.T, open func(t *testing.T) tokens.Store) {
	// putMany stores n links with user ids user-00 … user-(n-1), in random order,
	// and returns them by user id.
	putMany := func(t *testing.T, s tokens.Store, n int) map[string]*tokens.Link {
		t.Helper()
		want := make(map[string]*tokens.Link, n)
		for _, i := range rand.Perm(n) {
			l := NewLink(fmt.Sprintf("user-%02d", i))
			l.Tokens.Ciphertext = []byte(fmt.Sprintf("sealed-%02d", i))
			MustPut(t, s, l)
			want[l.UserID] = l
		}
		return want
	}

	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		page, err := s.ListLinks(t.Context(), "", 10)
		if err != nil {
			t.Fatalf("ListLinks error = %v", err)
		}
		if got, want := len(page.Links), 0; got != want {
			t.Errorf("len(Links) = %d, want %d", got, want)
		}
		if got, want := page.Next, ""; got != want {
			t.Errorf("Next = %q, want %q", got, want)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		s := open(t)
		want := putMany(t, s, 25)

		var sizes []int
		var ids []string
		cursor := ""
		for range 10 {
			page, err := s.ListLinks(t.Context(), cursor, 10)
			if err != nil {
				t.Fatalf("ListLinks(%q, 10) error = %v", cursor, err)
			}
			sizes = append(sizes, len(page.Links))
			for _, l := range page.Links {
				ids = append(ids, l.UserID)
				if w, ok := want[l.UserID]; ok {
					assertLink(t, l, w)
				}
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		if diff := cmp.Diff([]int{10, 10, 5}, sizes); diff != "" {
			t.Errorf("page sizes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(sortedKeys(want), ids); diff != "" {
			t.Errorf("user ids over all pages (-want +got):\n%s", diff)
		}
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		for _, limit := range []int{0, -1} {
			t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
				s := open(t)
				want := putMany(t, s, 25)
				var ids []string
				cursor := ""
				for range 30 {
					page, err := s.ListLinks(t.Context(), cursor, limit)
					if err != nil {
						t.Fatalf("ListLinks(%q, %d) error = %v", cursor, limit, err)
					}
					if len(page.Links) == 0 && page.Next != "" {
						t.Fatalf("ListLinks(%q, %d) returned an empty page with Next %q", cursor, limit, page.Next)
					}
					for _, l := range page.Links {
						ids = append(ids, l.UserID)
					}
					if page.Next == "" {
						break
					}
					cursor = page.Next
				}
				if diff := cmp.Diff(sortedKeys(want), ids); diff != "" {
					t.Errorf("user ids over all pages (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("Cursor", func(t *testing.T) {
		s := open(t)
		putMany(t, s, 5)
		for _, tt := range []struct {
			name   string
			cursor string
			want   []string
		}{
			{"StoredUser", "user-01", []string{"user-02", "user-03", "user-04"}},
			{"BetweenUsers", "user-01x", []string{"user-02", "user-03", "user-04"}},
			{"BeforeAll", "a", []string{"user-00", "user-01", "user-02", "user-03", "user-04"}},
			{"LastUser", "user-04", nil},
			{"AfterAll", "zzz", nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				page, err := s.ListLinks(t.Context(), tt.cursor, 10)
				if err != nil {
					t.Fatalf("ListLinks(%q) error = %v", tt.cursor, err)
				}
				var ids []string
				for _, l := range page.Links {
					ids = append(ids, l.UserID)
				}
				if diff := cmp.Diff(tt.want, ids); diff != "" {
					t.Errorf("user ids (-want +got):\n%s", diff)
				}
				if got, want := page.Next, ""; got != want {
					t.Errorf("Next = %q, want %q", got, want)
				}
			})
		}
	})

	t.Run("ReturnsCopies", func(t *testing.T) {
		s := open(t)
		want := NewLink("user-1")
		MustPut(t, s, want)
		page, err := s.ListLinks(t.Context(), "", 10)
		if err != nil {
			t.Fatalf("ListLinks error = %v", err)
		}
		if got, want := len(page.Links), 1; got != want {
			t.Fatalf("len(Links) = %d, want %d", got, want)
		}
		page.Links[0].Region = "FE"
		for i := range page.Links[0].Tokens.Ciphertext {
			page.Links[0].Tokens.Ciphertext[i] ^= 0xff
		}
		assertLink(t, MustGet(t, s, "user-1"), want)
	})
}
