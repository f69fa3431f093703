package dynamo_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestStore_ListLinksDeleting checks that links whose deletion is under way
// (marked deleting, their item not yet removed: a DeleteLink between its two
// writes, or one whose removal failed) never end a listing early: every other
// link is listed, in order, each page holds at most limit links, and no page
// is empty but for its Next. Stale is a reader past the outbox grace, which
// finishes those deletions as it reads.
func TestStore_ListLinksDeleting(t *testing.T) {
	endpoint := dynamotest.Start(t)
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	for _, tt := range []struct {
		name     string
		deleting []string
		limits   []int
	}{
		{"One", []string{"u2"}, []int{1, 2, 3, 5, 6}},
		{"Adjacent", []string{"u2", "u3"}, []int{1, 2, 3}},
		{"First", []string{"u1"}, []int{1, 2}},
		{"Last", []string{"u6"}, []int{1, 2, 5}},
		{"AllButTheEnds", []string{"u2", "u3", "u4", "u5"}, []int{1, 2}},
		{"All", users, []int{1, 2}},
	} {
		for _, stale := range []bool{false, true} {
			name := tt.name
			if stale {
				name += "/Stale"
			}
			t.Run(name, func(t *testing.T) {
				store, client, table := newCrashing(t, endpoint)
				for _, u := range users {
					storetest.MustPut(t, store, storetest.NewLink(u))
				}
				// Each deletion is written (the link marked deleting), but
				// its item is never removed.
				client.arm(func(_ int, op string) bool { return op == "DeleteItem" })
				for _, u := range tt.deleting {
					if err := store.DeleteLink(t.Context(), u, storetest.NewTestEvent(tokens.EventDeleted, u, time.Now())); err != nil {
						t.Fatalf("DeleteLink(%q) error = %v", u, err)
					}
				}
				client.arm(func(int, string) bool { return false })
				reader := mustNew(t, endpoint, table, false)
				if stale {
					dynamo.SetNow(reader, func() time.Time { return time.Now().Add(dynamo.OutboxGrace + time.Second) })
				}

				var want []string
				for _, u := range users {
					if !slices.Contains(tt.deleting, u) {
						want = append(want, u)
					}
				}
				for _, limit := range tt.limits {
					t.Run(fmt.Sprintf("Limit%d", limit), func(t *testing.T) {
						var got []string
						cursor := ""
						for range len(users) + 1 {
							page, err := reader.ListLinks(t.Context(), cursor, limit)
							if err != nil {
								t.Fatalf("ListLinks(%q, %d) error = %v", cursor, limit, err)
							}
							if len(page.Links) > limit {
								t.Errorf("ListLinks(%q, %d) returned %d links", cursor, limit, len(page.Links))
							}
							if len(page.Links) == 0 && page.Next != "" {
								t.Fatalf("ListLinks(%q, %d) returned an empty page with Next %q", cursor, limit, page.Next)
							}
							for _, l := range page.Links {
								got = append(got, l.UserID)
							}
							if page.Next == "" {
								break
							}
							cursor = page.Next
						}
						if diff := cmp.Diff(want, got); diff != "" {
							t.Errorf("user ids over all pages (-want +got):\n%s", diff)
						}
					})
				}
			})
		}
	}
}
