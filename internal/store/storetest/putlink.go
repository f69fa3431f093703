package storetest

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func testPutLink(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("Create", func(t *testing.T) { testPutLinkCreate(t, open) })
	t.Run("CreateConflict", func(t *testing.T) { testPutLinkCreateConflict(t, open) })
	t.Run("Update", func(t *testing.T) { testPutLinkUpdate(t, open) })
	t.Run("StaleVersion", func(t *testing.T) { testPutLinkStaleVersion(t, open) })
	t.Run("FutureVersion", func(t *testing.T) { testPutLinkFutureVersion(t, open) })
	t.Run("UpdateMissing", func(t *testing.T) { testPutLinkUpdateMissing(t, open) })
	t.Run("Invalid", func(t *testing.T) { testPutLinkInvalid(t, open) })
	t.Run("CopiesInput", func(t *testing.T) { testPutLinkCopiesInput(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testPutLinkConcurrent(t, open) })
}

// testPutLinkCreate checks that new links of every shape are stored as given,
// with a version above zero.
func testPutLinkCreate(t *testing.T, open func(t *testing.T) tokens.Store) {
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
}

// testPutLinkCreateConflict checks that creating a link that exists is a
// conflict that leaves the stored link and the new link's version as they were.
func testPutLinkCreateConflict(t *testing.T, open func(t *testing.T) tokens.Store) {
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
}

// testPutLinkUpdate checks that an update from the stored version is stored,
// with a greater version, twice in a row.
func testPutLinkUpdate(t *testing.T, open func(t *testing.T) tokens.Store) {
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
}

// testPutLinkStaleVersion checks that an update from a version another writer
// replaced is a conflict that leaves the winner's link stored.
func testPutLinkStaleVersion(t *testing.T, open func(t *testing.T) tokens.Store) {
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
}

// testPutLinkFutureVersion checks that an update from a version the store never
// handed out is a conflict.
func testPutLinkFutureVersion(t *testing.T, open func(t *testing.T) tokens.Store) {
	s := open(t)
	link := NewLink("user-1")
	MustPut(t, s, link)
	want := clone(link)

	future := clone(link)
	future.Version += 1000
	future.Region = "FE"
	assertConflict(t, s.PutLink(t.Context(), future))
	assertLink(t, MustGet(t, s, "user-1"), want)
}

// testPutLinkUpdateMissing checks that an update of a link that does not exist
// is a conflict, and creates nothing.
func testPutLinkUpdateMissing(t *testing.T, open func(t *testing.T) tokens.Store) {
	s := open(t)
	link := NewLink("user-1")
	link.Version = 7
	assertConflict(t, s.PutLink(t.Context(), link))
	assertNotFound(t, s, "user-1")
}

// testPutLinkInvalid checks that a link that fails Validate is an EINVALID
// error, and nothing is stored.
func testPutLinkInvalid(t *testing.T, open func(t *testing.T) tokens.Store) {
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
			assertRule(t, err, link.Validate())
			if got, want := link.Version, int64(0); got != want {
				t.Errorf("Version after invalid put = %d, want %d", got, want)
			}
			if link.UserID != "" {
				assertNotFound(t, s, link.UserID)
			}
		})
	}
}

// testPutLinkCopiesInput checks that changing a link after PutLink does not
// change what is stored.
func testPutLinkCopiesInput(t *testing.T, open func(t *testing.T) tokens.Store) {
	s := open(t)
	link := NewLink("user-1")
	MustPut(t, s, link)
	want := clone(link)

	for i := range link.Tokens.Ciphertext {
		link.Tokens.Ciphertext[i] ^= 0xff
	}
	link.Region = "FE"
	assertLink(t, MustGet(t, s, "user-1"), want)
}

// testPutLinkConcurrent checks that concurrent read-modify-write cycles, retried
// on conflict, lose no update and never hand out a version twice.
func testPutLinkConcurrent(t *testing.T, open func(t *testing.T) tokens.Store) {
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
}
