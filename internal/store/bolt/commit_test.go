package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// openGroupCommit returns a new bbolt file with the bucket "b", and its
// group commit, both closed when the test ends.
func openGroupCommit(t *testing.T) (*bbolt.DB, *groupCommit) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "group.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	g := newGroupCommit(db)
	t.Cleanup(func() {
		g.close()
		_ = db.Close()
	})
	return db, g
}

// hold makes g's committer wait, inside a transaction, until the returned
// function is called, so that the writes queued meanwhile make one group;
// release waits until the held write is committed.
func hold(t *testing.T, g *groupCommit) (release func()) {
	t.Helper()
	held, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- g.update(func(*bbolt.Tx) error {
			close(held)
			<-unblock
			return nil
		})
	}()
	<-held
	return func() {
		close(unblock)
		if err := <-done; err != nil {
			t.Errorf("held write: %v", err)
		}
	}
}

// waitQueued waits until n writes are queued in g, for at most five seconds.
func waitQueued(t *testing.T, g *groupCommit, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		g.mu.Lock()
		queued := len(g.queue)
		g.mu.Unlock()
		if queued == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// put returns a write that puts key → value into the bucket "b" and records
// the id of each transaction it runs in.
func put(key string, txIDs *[]int) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		*txIDs = append(*txIDs, tx.ID())
		return tx.Bucket([]byte("b")).Put([]byte(key), []byte("v-"+key))
	}
}

// updateAll runs fns through g at once, each from its own goroutine, and
// returns their errors by index once all have returned.
func updateAll(g *groupCommit, fns ...func(*bbolt.Tx) error) (errs []error, wait func()) {
	errs = make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() { errs[i] = g.update(fn) })
	}
	return errs, wg.Wait
}

// stored returns the value of key in the bucket "b", or "" when there is none.
func stored(t *testing.T, db *bbolt.DB, key string) string {
	t.Helper()
	var v string
	if err := db.View(func(tx *bbolt.Tx) error {
		v = string(tx.Bucket([]byte("b")).Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGroupCommit(t *testing.T) {
	t.Run("Alone", func(t *testing.T) {
		db, g := openGroupCommit(t)
		var txIDs []int
		if err := g.update(put("k", &txIDs)); err != nil {
			t.Fatal(err)
		}
		if got := stored(t, db, "k"); got != "v-k" {
			t.Errorf("stored %q, want v-k", got)
		}
		if len(txIDs) != 1 {
			t.Errorf("ran %d times, want once", len(txIDs))
		}
	})

	t.Run("OneTransaction", func(t *testing.T) {
		db, g := openGroupCommit(t)
		release := hold(t, g)
		txIDs := make([][]int, 10)
		fns := make([]func(*bbolt.Tx) error, len(txIDs))
		for i := range fns {
			fns[i] = put(fmt.Sprint("k", i), &txIDs[i])
		}
		errs, wait := updateAll(g, fns...)
		waitQueued(t, g, len(fns))
		release()
		wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
			if got, want := stored(t, db, fmt.Sprint("k", i)), fmt.Sprint("v-k", i); got != want {
				t.Errorf("stored %q, want %q", got, want)
			}
			if len(txIDs[i]) != 1 || txIDs[i][0] != txIDs[0][0] {
				t.Errorf("write %d ran in transactions %v, want once in %v, the first write's", i, txIDs[i], txIDs[0])
			}
		}
	})

	t.Run("FailsAlone", func(t *testing.T) {
		db, g := openGroupCommit(t)
		release := hold(t, g)
		var before, after []int
		failing := errors.New("refused")
		var failRuns int
		errs, wait := updateAll(g, put("before", &before), func(tx *bbolt.Tx) error {
			failRuns++
			if err := tx.Bucket([]byte("b")).Put([]byte("failed"), []byte("half-done")); err != nil {
				return err
			}
			return fmt.Errorf("write: %w", failing)
		}, put("after", &after))
		waitQueued(t, g, 3)
		release()
		wait()
		if errs[0] != nil || errs[2] != nil {
			t.Errorf("the other writes: %v, %v; want nil", errs[0], errs[2])
		}
		if !errors.Is(errs[1], failing) {
			t.Errorf("the failing write: %v, want its own error", errs[1])
		}
		if got := stored(t, db, "failed"); got != "" {
			t.Errorf("the failing write's change was stored: %q", got)
		}
		if stored(t, db, "before") == "" || stored(t, db, "after") == "" {
			t.Errorf("the other writes were not stored")
		}
		if failRuns != 2 {
			t.Errorf("the failing write ran %d times, want twice: in the group, then alone", failRuns)
		}
	})

	t.Run("PanicsAlone", func(t *testing.T) {
		db, g := openGroupCommit(t)
		release := hold(t, g)
		var other []int
		errs, wait := updateAll(g, put("other", &other))
		waitQueued(t, g, 1)
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			_ = g.update(func(*bbolt.Tx) error { panic("boom") })
		}()
		waitQueued(t, g, 2)
		release()
		wait()
		if p := <-panicked; p != "boom" {
			t.Errorf("the panicking write's caller recovered %v, want its panic", p)
		}
		if errs[0] != nil || stored(t, db, "other") == "" {
			t.Errorf("the other write: %v, stored %q; want it stored", errs[0], stored(t, db, "other"))
		}
	})

	t.Run("Close", func(t *testing.T) {
		db, g := openGroupCommit(t)
		release := hold(t, g)
		var queued []int
		errs, wait := updateAll(g, put("queued", &queued))
		waitQueued(t, g, 1)
		closed := make(chan struct{})
		go func() {
			g.close()
			close(closed)
		}()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			g.mu.Lock()
			closing := g.closing
			g.mu.Unlock()
			if closing {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("close did not start")
			}
		}
		if err := g.update(put("late", new([]int))); !errors.Is(err, berrors.ErrDatabaseNotOpen) {
			t.Errorf("write after close: %v, want ErrDatabaseNotOpen", err)
		}
		release()
		wait()
		<-closed
		if errs[0] != nil || stored(t, db, "queued") == "" {
			t.Errorf("the write queued before close: %v, stored %q; want it committed", errs[0], stored(t, db, "queued"))
		}
		if got := stored(t, db, "late"); got != "" {
			t.Errorf("the write after close was stored")
		}
		g.close() // twice is harmless
	})
}
