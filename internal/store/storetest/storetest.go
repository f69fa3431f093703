// Package storetest is the specification of tokens.Store: one conformance suite that
// every adapter (the embedded bbolt store, DynamoDB) runs from its own tests, so that
// all stores behave alike and the domain can rely on exactly what is written here.
//
// Beyond the doc comments of tokens.Store, the suite pins down:
//
//   - Times round-trip to the nanosecond as instants (compared with time.Equal; the
//     location need not be kept), zero times stay zero, and every time between 1970
//     and 2200 is kept exactly.
//   - Sealed bytes and key ids round-trip byte for byte.
//   - PutLink leaves link.Version untouched when it fails; versions only grow.
//   - Links given to and returned by the store are not shared with it: changing one
//     afterwards does not change what is stored.
//   - ListLinks orders by user id as bytes; a limit of zero or less means the store's
//     default page size; the page after the last one has Next "".
//   - ClaimCode with an empty code hash or user id is an EINVALID error.
//
// The suite needs no database of its own and no time to pass: expired code claims are
// made with expiry times in the past.
package storetest

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Run runs the conformance suite against the stores that open returns. open is
// called once per subtest and must return a new, empty store that is ready for use;
// it registers whatever cleanup the store needs with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Helper()
	t.Run("GetLink", func(t *testing.T) { testGetLink(t, open) })
	t.Run("PutLink", func(t *testing.T) { testPutLink(t, open) })
	t.Run("DeleteLink", func(t *testing.T) { testDeleteLink(t, open) })
	t.Run("ListLinks", func(t *testing.T) { testListLinks(t, open) })
	t.Run("ClaimCode", func(t *testing.T) { testClaimCode(t, open) })
	t.Run("Ping", func(t *testing.T) { testPing(t, open) })
}

func testGetLink(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		l, err := s.GetLink(t.Context(), "nobody")
		if !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("GetLink(missing) error = %v, want ErrLinkNotFound", err)
		}
		if got, want := tokens.ErrorCode(err), tokens.ENOTFOUND; got != want {
			t.Errorf("ErrorCode = %q, want %q", got, want)
		}
		if l != nil {
			t.Errorf("GetLink(missing) link = %+v, want nil", l)
		}
	})

	t.Run("ReturnsCopy", func(t *testing.T) {
		s := open(t)
		want := NewLink("user-1")
		MustPut(t, s, want)

		got := MustGet(t, s, "user-1")
		got.Region = "FE"
		got.CodeHash = "changed"
		got.State = tokens.StateRelinkRequired
		got.LinkedAt = got.LinkedAt.Add(time.Hour)
		got.Tokens.KeyID = "changed"
		for i := range got.Tokens.Ciphertext {
			got.Tokens.Ciphertext[i] ^= 0xff
		}

		assertLink(t, MustGet(t, s, "user-1"), want)
	})

	t.Run("SeparateUsers", func(t *testing.T) {
		s := open(t)
		a, b := NewLink("user-a"), NewLink("user-b")
		b.Region = "FE"
		b.Tokens.Ciphertext = []byte("other sealed bytes")
		MustPut(t, s, a)
		MustPut(t, s, b)
		assertLink(t, MustGet(t, s, "user-a"), a)
		assertLink(t, MustGet(t, s, "user-b"), b)
	})
}

func testPutLink(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("Create", func(t *testing.T) {
		allBytes := make([]byte, 256)
		for i := range allBytes {
			allBytes[i] = byte(i)
		}
		for _, tt := range []struct {
			name string
			link func() *tokens.Link
		}{
			{"Full", func() *tokens.Link { return NewLink("user-1") }},
			{"Minimal", func() *tokens.Link {
				return &tokens.Link{
					UserID: "user-1",
					State:  tokens.StateLinked,
					Tokens: tokens.Sealed{Ciphertext: []byte{0}},
				}
			}},
			{"RelinkRequired", func() *tokens.Link {
				l := NewLink("user-1")
				l.State = tokens.StateRelinkRequired
				return l
			}},
			{"AllByteValues", func() *tokens.Link {
				l := NewLink("user-1")
				l.Tokens.Ciphertext = allBytes
				return l
			}},
			{"UnusualUserID", func() *tokens.Link {
				return NewLink("amzn1.account/Ünïcode user+id=1 \"quoted\"")
			}},
			{"FarTimes", func() *tokens.Link {
				l := NewLink("user-1")
				l.LinkedAt = time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC)
				l.LastRefreshedAt = time.Date(2199, 12, 31, 23, 59, 59, 999999999, time.UTC)
				return l
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				link := tt.link()
				want := clone(link)
				if err := s.PutLink(t.Context(), link); err != nil {
					t.Fatalf("PutLink(new) error = %v", err)
				}
				if link.Version <= 0 {
					t.Fatalf("PutLink(new) set Version = %d, want > 0", link.Version)
				}
				want.Version = link.Version

				assertLink(t, MustGet(t, s, want.UserID), want)
			})
		}
	})

	t.Run("CreateConflict", func(t *testing.T) {
		s := open(t)
		first := NewLink("user-1")
		MustPut(t, s, first)

		second := NewLink("user-1")
		second.Region = "FE"
		err := s.PutLink(t.Context(), second)
		assertConflict(t, err)
		if got, want := second.Version, int64(0); got != want {
			t.Errorf("Version after failed create = %d, want %d", got, want)
		}
		assertLink(t, MustGet(t, s, "user-1"), first)
	})

	t.Run("Update", func(t *testing.T) {
		s := open(t)
		link := NewLink("user-1")
		MustPut(t, s, link)
		created := link.Version

		update := MustGet(t, s, "user-1")
		update.State = tokens.StateRelinkRequired
		update.Region = "FE"
		update.LastRefreshedAt = update.LastRefreshedAt.Add(time.Minute + time.Nanosecond)
		update.Tokens = tokens.Sealed{KeyID: "key-2", Ciphertext: []byte("new sealed bytes")}
		want := clone(update)
		if err := s.PutLink(t.Context(), update); err != nil {
			t.Fatalf("PutLink(update) error = %v", err)
		}
		if update.Version <= created {
			t.Fatalf("Version after update = %d, want > %d", update.Version, created)
		}
		want.Version = update.Version
		assertLink(t, MustGet(t, s, "user-1"), want)

		// And again, from the version just returned.
		update.Region = "NA"
		want.Region = "NA"
		second := update.Version
		if err := s.PutLink(t.Context(), update); err != nil {
			t.Fatalf("second PutLink(update) error = %v", err)
		}
		if update.Version <= second {
			t.Fatalf("Version after second update = %d, want > %d", update.Version, second)
		}
		want.Version = update.Version
		assertLink(t, MustGet(t, s, "user-1"), want)
	})

	t.Run("StaleVersion", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		stale := MustGet(t, s, "user-1")
		winner := MustGet(t, s, "user-1")

		winner.Region = "FE"
		MustPut(t, s, winner)

		stale.Region = "EU"
		stale.Tokens.Ciphertext = []byte("stale sealed bytes")
		staleVersion := stale.Version
		assertConflict(t, s.PutLink(t.Context(), stale))
		if got, want := stale.Version, staleVersion; got != want {
			t.Errorf("Version after conflict = %d, want unchanged %d", got, want)
		}
		assertLink(t, MustGet(t, s, "user-1"), winner)
	})

	t.Run("FutureVersion", func(t *testing.T) {
		s := open(t)
		link := NewLink("user-1")
		MustPut(t, s, link)
		want := clone(link)

		future := clone(link)
		future.Version += 1000
		future.Region = "FE"
		assertConflict(t, s.PutLink(t.Context(), future))
		assertLink(t, MustGet(t, s, "user-1"), want)
	})

	t.Run("UpdateMissing", func(t *testing.T) {
		s := open(t)
		link := NewLink("user-1")
		link.Version = 7
		assertConflict(t, s.PutLink(t.Context(), link))
		assertNotFound(t, s, "user-1")
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			mutate func(*tokens.Link)
		}{
			{"NoUserID", func(l *tokens.Link) { l.UserID = "" }},
			{"ZeroState", func(l *tokens.Link) { l.State = 0 }},
			{"UnknownState", func(l *tokens.Link) { l.State = 99 }},
			{"NoCiphertext", func(l *tokens.Link) { l.Tokens.Ciphertext = nil }},
			{"EmptyCiphertext", func(l *tokens.Link) { l.Tokens.Ciphertext = []byte{} }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				link := NewLink("user-1")
				tt.mutate(link)
				err := s.PutLink(t.Context(), link)
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Fatalf("PutLink(invalid) error = %v (code %q), want code %q", err, got, want)
				}
				if got, want := link.Version, int64(0); got != want {
					t.Errorf("Version after invalid put = %d, want %d", got, want)
				}
				if link.UserID != "" {
					assertNotFound(t, s, link.UserID)
				}
			})
		}
	})

	t.Run("CopiesInput", func(t *testing.T) {
		s := open(t)
		link := NewLink("user-1")
		MustPut(t, s, link)
		want := clone(link)

		for i := range link.Tokens.Ciphertext {
			link.Tokens.Ciphertext[i] ^= 0xff
		}
		link.Region = "FE"
		assertLink(t, MustGet(t, s, "user-1"), want)
	})

	t.Run("Concurrent", func(t *testing.T) {
		// Read-modify-write increments of a counter kept in CodeHash, retried on
		// conflict: a store that loses an update ends below the number of writers.
		const writers = 20
		s := open(t)
		link := NewLink("user-1")
		link.CodeHash = "0"
		MustPut(t, s, link)

		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			mu       sync.Mutex
			versions = map[int64]bool{link.Version: true}
		)
		for w := range writers {
			wg.Go(func() {
				<-start
				for attempt := 0; ; attempt++ {
					if attempt == 10_000 {
						t.Errorf("writer %d: no successful update after %d attempts", w, attempt)
						return
					}
					l, err := s.GetLink(t.Context(), "user-1")
					if err != nil {
						t.Errorf("writer %d: GetLink error = %v", w, err)
						return
					}
					n, err := strconv.Atoi(l.CodeHash)
					if err != nil {
						t.Errorf("writer %d: counter %q: %v", w, l.CodeHash, err)
						return
					}
					l.CodeHash = strconv.Itoa(n + 1)
					err = s.PutLink(t.Context(), l)
					if errors.Is(err, tokens.ErrVersionConflict) {
						continue
					}
					if err != nil {
						t.Errorf("writer %d: PutLink error = %v", w, err)
						return
					}
					mu.Lock()
					if versions[l.Version] {
						t.Errorf("writer %d: version %d was handed out twice", w, l.Version)
					}
					versions[l.Version] = true
					mu.Unlock()
					return
				}
			})
		}
		close(start)
		wg.Wait()

		got := MustGet(t, s, "user-1")
		if got, want := got.CodeHash, strconv.Itoa(writers); got != want {
			t.Errorf("counter after %d concurrent increments = %s, want %s", writers, got, want)
		}
		if got, want := len(versions), writers+1; got != want {
			t.Errorf("distinct versions = %d, want %d", got, want)
		}
		for v := range versions {
			if v > got.Version {
				t.Errorf("version %d handed out is above the final version %d", v, got.Version)
			}
		}
	})
}

func testDeleteLink(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("ThenGet", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		other := NewLink("user-2")
		MustPut(t, s, other)

		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteLink error = %v", err)
		}
		assertNotFound(t, s, "user-1")
		assertLink(t, MustGet(t, s, "user-2"), other)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		err := s.DeleteLink(t.Context(), "nobody")
		if !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("DeleteLink(missing) error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("Twice", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("first DeleteLink error = %v", err)
		}
		if err := s.DeleteLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("second DeleteLink error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("ThenUpdate", func(t *testing.T) {
		s := open(t)
		link := NewLink("user-1")
		MustPut(t, s, link)
		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteLink error = %v", err)
		}
		link.Region = "FE"
		assertConflict(t, s.PutLink(t.Context(), link))
		assertNotFound(t, s, "user-1")
	})

	t.Run("ThenCreate", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteLink error = %v", err)
		}
		again := NewLink("user-1")
		again.Region = "FE"
		MustPut(t, s, again)
		assertLink(t, MustGet(t, s, "user-1"), again)
	})
}

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

func testClaimCode(t *testing.T, open func(t *testing.T) tokens.Store) {
	// The store compares expiry times with its own clock; an hour either side of
	// the test's clock is far from any skew.
	later := func() time.Time { return time.Now().Add(time.Hour) }
	earlier := func() time.Time { return time.Now().Add(-time.Hour) }

	type claim struct {
		code, user string
		expires    func() time.Time
		wantOwner  string
	}
	for _, tt := range []struct {
		name   string
		claims []claim
	}{
		{"First", []claim{
			{"code-1", "alice", later, "alice"},
		}},
		{"OtherUser", []claim{
			{"code-1", "alice", later, "alice"},
			{"code-1", "bob", later, "alice"},
		}},
		{"SameUser", []claim{
			{"code-1", "alice", later, "alice"},
			{"code-1", "alice", later, "alice"},
			{"code-1", "bob", later, "alice"},
			{"code-1", "alice", later, "alice"},
		}},
		{"Expired", []claim{
			{"code-1", "alice", earlier, "alice"},
			{"code-1", "bob", later, "bob"},
			{"code-1", "alice", later, "bob"},
		}},
		{"ExpiredSameUser", []claim{
			{"code-1", "alice", earlier, "alice"},
			{"code-1", "alice", later, "alice"},
			{"code-1", "bob", later, "alice"},
		}},
		{"SeparateCodes", []claim{
			{"code-1", "alice", later, "alice"},
			{"code-2", "bob", later, "bob"},
			{"code-1", "bob", later, "alice"},
			{"code-2", "alice", later, "bob"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			for i, c := range tt.claims {
				owner, err := s.ClaimCode(t.Context(), c.code, c.user, c.expires())
				if err != nil {
					t.Fatalf("claim %d: ClaimCode(%q, %q) error = %v", i, c.code, c.user, err)
				}
				if got, want := owner, c.wantOwner; got != want {
					t.Errorf("claim %d: ClaimCode(%q, %q) owner = %q, want %q", i, c.code, c.user, got, want)
				}
			}
		})
	}

	t.Run("Concurrent", func(t *testing.T) {
		const claimers = 20
		s := open(t)
		owners := make([]string, claimers)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range claimers {
			wg.Go(func() {
				<-start
				owner, err := s.ClaimCode(t.Context(), "code-1", fmt.Sprintf("user-%02d", i), later())
				if err != nil {
					t.Errorf("claimer %d: ClaimCode error = %v", i, err)
				}
				owners[i] = owner
			})
		}
		close(start)
		wg.Wait()
		for i, owner := range owners {
			if owner != owners[0] {
				t.Errorf("claimer %d got owner %q, claimer 0 got %q: want one owner", i, owner, owners[0])
			}
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range []struct {
			name, code, user string
		}{
			{"NoCodeHash", "", "alice"},
			{"NoUserID", "code-1", ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				_, err := s.ClaimCode(t.Context(), tt.code, tt.user, later())
				if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
					t.Errorf("ClaimCode(%q, %q) error = %v (code %q), want code %q", tt.code, tt.user, err, got, want)
				}
			})
		}
	})
}

func testPing(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping error = %v", err)
		}
	})
}

// NewLink returns a valid link for userID, not stored yet, with every field set:
// times in a non-UTC zone with nanoseconds, a key id and sealed bytes that include
// zero and high bytes.
func NewLink(userID string) *tokens.Link {
	ist := time.FixedZone("IST", 5*3600+30*60)
	return &tokens.Link{
		UserID:               userID,
		State:                tokens.StateLinked,
		Region:               "EU",
		LinkedAt:             time.Date(2025, 3, 14, 15, 9, 26, 535897932, ist),
		LastRefreshedAt:      time.Date(2025, 3, 14, 16, 0, 0, 123456789, time.UTC),
		AccessTokenExpiresAt: time.Date(2025, 3, 14, 17, 0, 0, 1, time.UTC),
		CodeHash:             "sha256:6b86b273ff34fce19d6b804eff5a3f57",
		Tokens: tokens.Sealed{
			KeyID:      "key-1",
			Ciphertext: []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 'a', 0x00},
		},
	}
}

// MustPut stores link with PutLink and fails the test on error.
func MustPut(tb testing.TB, s tokens.Store, link *tokens.Link) {
	tb.Helper()
	if err := s.PutLink(tb.Context(), link); err != nil {
		tb.Fatalf("PutLink(%q, version %d) error = %v", link.UserID, link.Version, err)
	}
}

// MustGet returns the link of userID and fails the test on error.
func MustGet(tb testing.TB, s tokens.Store, userID string) *tokens.Link {
	tb.Helper()
	l, err := s.GetLink(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("GetLink(%q) error = %v", userID, err)
	}
	if l == nil {
		tb.Fatalf("GetLink(%q) returned nil and no error", userID)
	}
	return l
}

func assertLink(t *testing.T, got, want *tokens.Link) {
	t.Helper()
	// cmp uses time.Time's Equal method: instants are compared, not locations.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("link %q (-want +got):\n%s", want.UserID, diff)
	}
}

func assertNotFound(t *testing.T, s tokens.Store, userID string) {
	t.Helper()
	if _, err := s.GetLink(t.Context(), userID); !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Errorf("GetLink(%q) error = %v, want ErrLinkNotFound", userID, err)
	}
}

func assertConflict(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, tokens.ErrVersionConflict) {
		t.Fatalf("PutLink error = %v, want ErrVersionConflict", err)
	}
	if got, want := tokens.ErrorCode(err), tokens.ECONFLICT; got != want {
		t.Errorf("ErrorCode = %q, want %q", got, want)
	}
}

func clone(l *tokens.Link) *tokens.Link {
	c := *l
	c.Tokens.Ciphertext = append([]byte(nil), l.Tokens.Ciphertext...)
	return &c
}

func sortedKeys(m map[string]*tokens.Link) []string {
	return slices.Sorted(maps.Keys(m))
}
