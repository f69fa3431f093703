package bolt

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxGroup is the most writes one group commit holds; more wait for the next.
// It bounds the size of one transaction, as bbolt's DefaultMaxBatchSize does
// for DB.Batch.
const maxGroup = 1000

// groupCommit commits the writes of concurrent callers together: one bbolt
// write transaction, so one commit and its fsyncs, holds every write that
// arrived while the one before was being committed. It has no timer (unlike
// bbolt's DB.Batch, which waits up to MaxBatchDelay for company): a write
// that finds the committer idle is committed at once, alone; writes that
// queue behind a commit are committed together as soon as it ends. So a lone
// write costs what db.Update costs, and many writers share each fsync.
//
// A write is a function of the transaction, like db.Update's. Every function
// of a group runs in queue order in the one transaction, each seeing what the
// ones before it wrote, so a group does what its functions would do in turn,
// one transaction each. A function that fails (returns an error or panics)
// would take the others' writes with it: the transaction is rolled back and
// run again without it, and the function is run again alone, in a
// transaction of its own, so that its error is its own. A function may thus
// run more than once, and must set its results anew on every run.
type groupCommit struct {
	db *bbolt.DB

	mu      sync.Mutex
	wake    *sync.Cond // signalled when a write is queued or closing is set
	queue   []*groupWrite
	closing bool
	done    chan struct{} // closed when run has returned
}

// groupWrite is one caller's write waiting for its commit.
type groupWrite struct {
	fn   func(*bbolt.Tx) error
	done chan error // receives the commit's outcome, or errAlone
}

// errAlone tells a caller that its function failed in a group: run it again
// in a transaction of its own.
var errAlone = errors.New("bolt: group commit: run the write alone")

// newGroupCommit returns the group commit of db, its committer running until
// close.
func newGroupCommit(db *bbolt.DB) *groupCommit {
	g := &groupCommit{db: db, done: make(chan struct{})}
	g.wake = sync.NewCond(&g.mu)
	go g.run()
	return g
}

// update runs fn in a write transaction shared with the writes of other
// callers, and returns once that transaction is committed (on disk) or failed,
// with fn's error, or bbolt's, as db.Update would. Once close has been called
// it returns berrors.ErrDatabaseNotOpen and runs nothing.
func (g *groupCommit) update(fn func(*bbolt.Tx) error) error {
	w := &groupWrite{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return berrors.ErrDatabaseNotOpen
	}
	g.queue = append(g.queue, w)
	g.wake.Signal()
	g.mu.Unlock()
	err := <-w.done
	if errors.Is(err, errAlone) {
		return g.db.Update(fn)
	}
	return err
}

// close commits the writes queued, then stops the committer; later writes are
// refused. It returns once the committer has stopped, so that the database can
// be closed. Closing twice is harmless.
func (g *groupCommit) close() {
	g.mu.Lock()
	g.closing = true
	g.wake.Signal()
	g.mu.Unlock()
	<-g.done
}

// run is the committer: it commits the queue, up to maxGroup writes at a
// time, until close.
func (g *groupCommit) run() {
	defer close(g.done)
	for {
		g.mu.Lock()
		for len(g.queue) == 0 && !g.closing {
			g.wake.Wait()
		}
		n := min(len(g.queue), maxGroup)
		group := slices.Clone(g.queue[:n])
		g.queue = slices.Delete(g.queue, 0, n)
		g.mu.Unlock()
		if len(group) == 0 {
			return // closing, and nothing is left
		}
		g.commit(group)
	}
}

// commit runs the functions of group in one write transaction and tells each
// caller the outcome. A function that fails is taken out, its caller told to
// run it alone, and the transaction run again with the others.
func (g *groupCommit) commit(group []*groupWrite) {
	for len(group) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for i, w := range group {
				if err := call(w.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, w := range group {
				w.done <- err // nil, or bbolt's own failure, which is every write's
			}
			return
		}
		group[failed].done <- errAlone
		group = slices.Delete(group, failed, failed+1)
	}
}

// call runs fn in tx, turning a panic into an error, so that a function that
// panics fails alone: run again alone, in its caller's goroutine, it panics
// there as it would in db.Update.
func call(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("bolt: group commit: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
