package bolt_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/bolt"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokens.Store {
		return openTemp(t)
	})
}

func TestStore_Reports(t *testing.T) {
	storetest.RunReports(t, func(t *testing.T) reports.Store {
		return openTemp(t)
	})
}

func TestStore_PendingReports(t *testing.T) {
	storetest.RunPendingReports(t, func(t *testing.T) storetest.PendingListStore { return openTemp(t) })
}

func TestOpen(t *testing.T) {
	t.Run("CreatesDirectoryAndFile", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "broker")
		path := filepath.Join(dir, "broker.db")
		s := mustOpen(t, path)
		if err := s.Close(); err != nil {
			t.Fatalf("Close error = %v", err)
		}
		for _, tt := range []struct {
			path string
			want os.FileMode
		}{
			{dir, 0o700 | os.ModeDir},
			{path, 0o600},
		} {
			fi, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fi.Mode(), tt.want; got != want {
				t.Errorf("mode of %s = %v, want %v", tt.path, got, want)
			}
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "broker.db")
		s := mustOpen(t, path)
		want := storetest.NewLink("user-1")
		storetest.MustPut(t, s, want)
		if owner, err := s.ClaimCode(t.Context(), "code-1", "user-1", time.Now().Add(time.Hour)); err != nil || owner != "user-1" {
			t.Fatalf("ClaimCode = %q, %v; want %q, nil", owner, err, "user-1")
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close error = %v", err)
		}

		s = mustOpen(t, path)
		got := storetest.MustGet(t, s, "user-1")
		if !got.LinkedAt.Equal(want.LinkedAt) || got.Version != want.Version ||
			string(got.Tokens.Ciphertext) != string(want.Tokens.Ciphertext) || got.Tokens.KeyID != want.Tokens.KeyID {
			t.Errorf("link after reopen = %+v, want %+v", got, want)
		}
		owner, err := s.ClaimCode(t.Context(), "code-1", "user-2", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatalf("ClaimCode after reopen error = %v", err)
		}
		if got, want := owner, "user-1"; got != want {
			t.Errorf("owner after reopen = %q, want %q", got, want)
		}

		// Versions keep growing across a reopen.
		before := got.Version
		storetest.MustPut(t, s, got)
		if got.Version <= before {
			t.Errorf("Version after reopen and update = %d, want > %d", got.Version, before)
		}
	})

	t.Run("Locked", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "broker.db")
		first := mustOpen(t, path)

		type result struct {
			s   *bolt.Store
			err error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			s, err := bolt.Open(path)
			done <- result{s, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(10 * bolt.OpenTimeout):
			t.Fatalf("second Open of a locked file did not return within %s", 10*bolt.OpenTimeout)
		}
		elapsed := time.Since(start)
		if r.err == nil {
			_ = r.s.Close()
			t.Fatal("second Open of a locked file succeeded, want an error")
		}
		if got, want := tokens.ErrorCode(r.err), tokens.EUNAVAILABLE; got != want {
			t.Errorf("second Open error = %v (code %q), want code %q", r.err, got, want)
		}
		if !errors.Is(r.err, berrors.ErrTimeout) {
			t.Errorf("second Open error = %v, want it to wrap bbolt's ErrTimeout", r.err)
		}
		// bbolt polls the lock every 50ms and gives up within one poll of the timeout.
		if elapsed < bolt.OpenTimeout/2 {
			t.Errorf("second Open failed after %s, want it to wait about %s for the lock", elapsed, bolt.OpenTimeout)
		}

		// Once the first handle lets go, the file opens again.
		if err := first.Close(); err != nil {
			t.Fatalf("Close error = %v", err)
		}
		mustOpen(t, path)
	})

	t.Run("NotADatabase", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "broker.db")
		if err := os.WriteFile(path, []byte("this is not a bbolt file, but it is long enough to have a header........"), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := bolt.Open(path)
		if err == nil {
			_ = s.Close()
			t.Fatal("Open of a file that is not a database succeeded, want an error")
		}
	})

	t.Run("NoPath", func(t *testing.T) {
		_, err := bolt.Open("")
		if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
			t.Errorf("Open(\"\") error = %v (code %q), want code %q", err, got, want)
		}
	})
}

func TestStore_Closed(t *testing.T) {
	s := openTemp(t)
	storetest.MustPut(t, s, storetest.NewLink("user-1"))
	storetest.MustGet(t, s, "user-1") // in the link cache, which Close must empty
	if err := s.Close(); err != nil {
		t.Fatalf("Close error = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close error = %v, want nil", err)
	}

	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(t.Context()) }},
		{"GetLink", func() error { _, err := s.GetLink(t.Context(), "user-1"); return err }},
		{"PutLink", func() error { return s.PutLink(t.Context(), storetest.NewLink("user-2")) }},
		{"DeleteLink", func() error { return s.DeleteLink(t.Context(), "user-1") }},
		{"ListLinks", func() error { _, err := s.ListLinks(t.Context(), "", 10); return err }},
		{"ClaimCode", func() error {
			_, err := s.ClaimCode(t.Context(), "code-1", "user-1", time.Now().Add(time.Hour))
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
				t.Errorf("%s on a closed store: error = %v (code %q), want code %q", tt.name, err, got, want)
			}
		})
	}
}

// TestStore_LinkReads has writers put new versions of one link while readers
// read it: no reader may see the version go back (a read that raced a write
// must not leave the old link in the cache), and once the writers are done
// every view reads the last version.
func TestStore_LinkReads(t *testing.T) {
	s := openTemp(t)
	storetest.MustPut(t, s, storetest.NewLink("user-1"))
	const writers, readers, writes = 2, 4, 50
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range writes {
				for {
					l := storetest.MustGet(t, s, "user-1")
					err := s.PutLink(t.Context(), l)
					if err == nil {
						break
					}
					if !errors.Is(err, tokens.ErrVersionConflict) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	done := make(chan struct{})
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			var seen int64
			for {
				l, err := s.GetLink(t.Context(), "user-1")
				if err != nil {
					t.Error(err)
					return
				}
				if l.Version < seen {
					t.Errorf("read version %d after %d", l.Version, seen)
					return
				}
				seen = l.Version
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	last := storetest.MustGet(t, s, "user-1").Version
	if err := s.PutLink(t.Context(), &tokens.Link{UserID: "user-1", State: tokens.StateLinked, Tokens: tokens.Sealed{Ciphertext: []byte("x")}, Version: last}); err != nil {
		t.Fatalf("PutLink at the version read last (%d): %v", last, err)
	}
	if got := storetest.MustGet(t, s, "user-1"); got.Version <= last || string(got.Tokens.Ciphertext) != "x" {
		t.Errorf("after a write, GetLink = version %d, ciphertext %q; want > %d, %q", got.Version, got.Tokens.Ciphertext, last, "x")
	}
	if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Errorf("GetLink after DeleteLink: error = %v, want ErrLinkNotFound", err)
	}
}

func TestStore_CorruptRecord(t *testing.T) {
	for _, tt := range []struct {
		name   string
		record string
	}{
		{"Empty", ""},
		{"JSON", `{"format":1,"user_id":"user-1","state":"LINKED","sealed":"AA==","version":1}`},
		{"UnknownFormat", "\x09" + linkFields("user-1", "LINKED") + "\x00\x00\x00\x02"},
		{"UnknownState", "\x02" + linkFields("user-1", "HAPPY") + "\x00\x00\x00\x02"},
		{"BadTimeMarker", "\x02" + linkFields("user-1", "LINKED") + "\x07\x00\x00\x02"},
		{"Truncated", "\x02" + linkFields("user-1", "LINKED") + "\x00\x00"},
		{"TrailingBytes", "\x02" + linkFields("user-1", "LINKED") + "\x00\x00\x00\x02\x00"},
		{"FieldTooLong", "\x02\x7fuser-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "broker.db")
			s := mustOpen(t, path)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			writeRaw(t, path, "links", "user-1", tt.record)

			s = mustOpen(t, path)
			_, err := s.GetLink(t.Context(), "user-1")
			if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
				t.Errorf("GetLink of a corrupt record: error = %v (code %q), want code %q", err, got, want)
			}
			if _, err := s.ListLinks(t.Context(), "", 10); tokens.ErrorCode(err) != tokens.EINTERNAL {
				t.Errorf("ListLinks over a corrupt record: error = %v, want code %q", err, tokens.EINTERNAL)
			}
		})
	}
}

// BenchmarkStore_GetLink reads a link of the default skill, in the top-level
// bucket, and of another skill, two nested buckets down.
func BenchmarkStore_GetLink(b *testing.B) {
	for _, skill := range []string{tokens.DefaultSkillID, "home"} {
		b.Run("skill="+skill, func(b *testing.B) {
			s := openTemp(b).ForSkill(skill)
			storetest.MustPut(b, s, storetest.NewLink("user-1"))
			for b.Loop() {
				if _, err := s.GetLink(b.Context(), "user-1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkStore_PutLink(b *testing.B) {
	s := openTemp(b)
	link := storetest.NewLink("user-1")
	storetest.MustPut(b, s, link)
	for b.Loop() {
		if err := s.PutLink(b.Context(), link); err != nil {
			b.Fatal(err)
		}
	}
}

// openTemp opens a store in a new file under tb.TempDir and closes it when the
// test ends.
func openTemp(tb testing.TB) *bolt.Store {
	tb.Helper()
	return mustOpen(tb, filepath.Join(tb.TempDir(), "broker.db"))
}

// mustOpen opens the store at path and closes it when the test ends.
func mustOpen(tb testing.TB, path string) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		tb.Fatalf("Open(%s) error = %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close error = %v", err)
		}
	})
	return s
}

// writeRaw puts value under key in bucket of the bbolt file at path, bypassing
// the store.
// linkFields encodes the length-prefixed fields of a link record: user, state,
// empty region, code hash and key id, and one sealed byte.
func linkFields(user, state string) string {
	var b []byte
	for _, f := range []string{user, state, "", "", "", "x"} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return string(b)
}

func writeRaw(tb testing.TB, path, bucket, key, value string) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(bucket)).Put([]byte(key), []byte(value))
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestStore_Events(t *testing.T) {
	storetest.RunEvents(t, func(t *testing.T) storetest.EventStore { return openTemp(t) })
}

func TestStore_ReportEvents(t *testing.T) {
	storetest.RunReportEvents(t, func(t *testing.T) storetest.ReportEventStore { return openTemp(t) })
}

func TestStore_Webhooks(t *testing.T) {
	storetest.RunWebhooks(t, func(t *testing.T) storetest.WebhookStore { return openTemp(t) })
}

func TestStore_Counts(t *testing.T) {
	t.Run("Links", func(t *testing.T) {
		storetest.RunLinkCounts(t, func(t *testing.T) storetest.LinkCountStore { return openTemp(t) })
	})
	t.Run("Reports", func(t *testing.T) {
		storetest.RunReportCounts(t, func(t *testing.T) storetest.ReportCountStore { return openTemp(t) })
	})
}

// BenchmarkPutLink_Events measures links written with one event each (a
// refresh and its link.refreshed) against links written without, and reports
// events written per second: each write is one bbolt transaction, whose fsync
// is most of its cost.
func BenchmarkPutLink_Events(b *testing.B) {
	for _, events := range []int{0, 1} {
		b.Run(fmt.Sprint("events=", events), func(b *testing.B) {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "broker.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			link := storetest.NewLink("user-1")
			storetest.MustPut(b, s, link)
			at := time.Now()
			for i := 0; b.Loop(); i++ {
				var evs []tokens.Event
				if events > 0 {
					evs = append(evs, tokens.NewEvent(tokens.EventRefreshed, "user-1", tokens.ActorBroker, at.Add(time.Duration(i)), map[string]any{"trigger": "background"}))
				}
				if err := s.PutLink(b.Context(), link, evs...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
