package tokens_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"

	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// countingWaiter lets every wait through at once, counting them, or fails them
// all with err.
type countingWaiter struct {
	waits atomic.Int64
	err   error
}

var _ tokens.Waiter = (*countingWaiter)(nil)

func (w *countingWaiter) Wait(ctx context.Context) error {
	w.waits.Add(1)
	if w.err != nil {
		return w.err
	}
	return ctx.Err()
}

// keys holds the three static keys of these tests: A the old one, B the new
// one, C one no ring holds.
type keys struct{ a, b, c seal.Key }

func newKeys(tb testing.TB) keys {
	tb.Helper()
	var k keys
	for _, p := range []*seal.Key{&k.a, &k.b, &k.c} {
		key, err := seal.GenerateKey()
		if err != nil {
			tb.Fatal(err)
		}
		*p = key
	}
	return k
}

func mustRing(tb testing.TB, first seal.RingKey, more ...seal.RingKey) *seal.Ring {
	tb.Helper()
	r, err := seal.NewRing(first, more...)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// putSealed stores a linked user whose tokens are "tokens of <user>" sealed
// under key.
func putSealed(tb testing.TB, store tokens.Store, user string, key seal.Key) *tokens.Link {
	tb.Helper()
	sealed, err := mustRing(tb, key).Seal(user, []byte("tokens of "+user))
	if err != nil {
		tb.Fatal(err)
	}
	l := &tokens.Link{UserID: user, State: tokens.StateLinked, Tokens: sealed}
	if err := store.PutLink(context.Background(), l); err != nil {
		tb.Fatal(err)
	}
	return l
}

// opensAs fails unless user's stored tokens open under ring, are named as key
// id's, and hold what putSealed sealed.
func opensAs(tb testing.TB, store tokens.Store, ring tokens.KeyRing, user, id string) {
	tb.Helper()
	l, err := store.GetLink(context.Background(), user)
	if err != nil {
		tb.Fatal(err)
	}
	if got := ring.KeyOf(l.Tokens); got != id {
		tb.Errorf("%s: sealed under %s, want %s", user, got, id)
	}
	b, err := ring.Open(user, l.Tokens)
	if err != nil || string(b) != "tokens of "+user {
		tb.Errorf("%s: Open = %q, %v", user, b, err)
	}
}

func TestResealer_Pass(t *testing.T) {
	k := newKeys(t)
	ring := mustRing(t, k.b, k.a) // rotated from A to B
	setup := func(t *testing.T) *memStore {
		t.Helper()
		store := newMemStore()
		for i := range 3 {
			putSealed(t, store, fmt.Sprintf("old-%d", i), k.a)
		}
		for i := range 2 {
			putSealed(t, store, fmt.Sprintf("new-%d", i), k.b)
		}
		putSealed(t, store, "lost", k.c)
		return store
	}

	t.Run("Reseals", func(t *testing.T) {
		store := setup(t)
		r := tokens.NewResealer(store, ring)
		w := &countingWaiter{}
		r.Limit = w
		counts, err := r.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{k.b.ID(): 5, k.a.ID(): 0, k.c.ID(): 1}
		if !maps.Equal(counts, want) {
			t.Errorf("counts = %v, want %v", counts, want)
		}
		if got, ok := r.Counts(); !ok || !maps.Equal(got, want) {
			t.Errorf("Counts() = %v, %v; want %v", got, ok, want)
		}
		for i := range 3 {
			opensAs(t, store, ring, fmt.Sprintf("old-%d", i), k.b.ID())
		}
		if got := w.waits.Load(); got != 3 {
			t.Errorf("waits = %d, want 3: one per link sealed again, none for the link under a key the ring lacks", got)
		}
		opensAs(t, store, mustRing(t, k.b), "old-0", k.b.ID()) // A can go
	})

	t.Run("CountOnly", func(t *testing.T) {
		store := setup(t)
		r := tokens.NewResealer(store, ring)
		if _, ok := r.Counts(); ok {
			t.Error("Counts() before the first pass says ok")
		}
		counts, err := r.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{k.b.ID(): 2, k.a.ID(): 3, k.c.ID(): 1}; !maps.Equal(counts, want) {
			t.Errorf("counts = %v, want %v", counts, want)
		}
		opensAs(t, store, ring, "old-0", k.a.ID())
	})

	t.Run("WrittenMeanwhile", func(t *testing.T) {
		store := newMemStore()
		putSealed(t, store, "busy", k.a)
		// A refresh writes the link (sealed under B, new tokens) between the
		// re-sealer's read and its write: the refresh's write stays.
		store.beforeNextPut(func() {
			l, err := store.GetLink(context.Background(), "busy")
			if err != nil {
				t.Error(err)
				return
			}
			l.Tokens, err = ring.Seal("busy", []byte("tokens of busy"))
			if err != nil {
				t.Error(err)
				return
			}
			l.State = tokens.StateRelinkRequired // marks the refresh's write
			if err := store.PutLink(context.Background(), l); err != nil {
				t.Error(err)
			}
		})
		r := tokens.NewResealer(store, ring)
		r.Limit = &countingWaiter{}
		if _, err := r.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		l, err := store.GetLink(context.Background(), "busy")
		if err != nil {
			t.Fatal(err)
		}
		if l.State != tokens.StateRelinkRequired {
			t.Error("the re-sealer overwrote a link written after it read it")
		}
		opensAs(t, store, ring, "busy", k.b.ID())
	})

	t.Run("Pages", func(t *testing.T) {
		store := newMemStore()
		n := tokens.MaxPageSize + 3
		for i := range n {
			putSealed(t, store, fmt.Sprintf("user-%05d", i), k.a)
		}
		r := tokens.NewResealer(store, ring)
		r.Limit = &countingWaiter{}
		counts, err := r.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := counts[k.b.ID()]; got != n {
			t.Errorf("links under B = %d, want %d", got, n)
		}
		opensAs(t, store, ring, fmt.Sprintf("user-%05d", n-1), k.b.ID())
	})

	t.Run("Stopped", func(t *testing.T) {
		store := setup(t)
		r := tokens.NewResealer(store, ring)
		if _, err := r.Pass(context.Background()); err != nil { // counts only
			t.Fatal(err)
		}
		stop := errors.New("stopped")
		r.Limit = &countingWaiter{err: stop}
		if _, err := r.Pass(context.Background()); !errors.Is(err, stop) {
			t.Fatalf("Pass error = %v, want the waiter's", err)
		}
		if got, _ := r.Counts(); got[k.a.ID()] != 3 {
			t.Errorf("Counts() after a failed pass = %v, want the previous pass's", got)
		}
	})

	t.Run("StoreUnavailable", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := tokens.NewResealer(setup(t), ring).Pass(ctx)
		if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
			t.Errorf("Pass error = %v, want code %q", err, want)
		}
	})
}

func TestCheckKeys(t *testing.T) {
	k := newKeys(t)
	ring := mustRing(t, k.b, k.a)
	store := newMemStore()
	putSealed(t, store, "a-1", k.a)
	putSealed(t, store, "b-1", k.b)
	putSealed(t, store, "c-1", k.c)
	putSealed(t, store, "c-2", k.c)
	altered := putSealed(t, store, "b-2", k.b)
	altered.Tokens.Ciphertext[len(altered.Tokens.Ciphertext)-1] ^= 1
	if err := store.PutLink(context.Background(), altered); err != nil {
		t.Fatal(err)
	}

	read, problems, err := tokens.CheckKeys(context.Background(), store, ring, 100)
	if err != nil {
		t.Fatal(err)
	}
	if read != 5 {
		t.Errorf("read %d links, want 5", read)
	}
	want := map[string]struct {
		links int
		held  bool
	}{k.b.ID(): {1, true}, k.c.ID(): {2, false}}
	if len(problems) != len(want) {
		t.Fatalf("problems = %v, want %d", problems, len(want))
	}
	for _, p := range problems {
		w, ok := want[p.KeyID]
		if !ok || p.Links != w.links || p.Held != w.held {
			t.Errorf("problem %v, want %+v for %s", p, w, p.KeyID)
		}
	}

	t.Run("Sample", func(t *testing.T) {
		read, problems, err := tokens.CheckKeys(context.Background(), store, ring, 2) // a-1, b-1
		if err != nil || read != 2 || len(problems) != 0 {
			t.Errorf("CheckKeys(2) = %d, %v, %v; want 2 links, no problem", read, problems, err)
		}
	})
}
