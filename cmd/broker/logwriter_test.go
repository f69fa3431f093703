package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes is a hand-written io.Writer that keeps each write apart; it is safe
// for concurrent use.
type writes struct {
	mu sync.Mutex
	w  []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.w = append(w.w, string(p))
	return len(p), nil
}

// all returns the writes so far.
func (w *writes) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.w)
}

func TestLogWriter(t *testing.T) {
	t.Run("BatchedUntilClose", func(t *testing.T) {
		out := &writes{}
		lw := newLogWriter(out, time.Hour)
		for i := range 3 {
			fmt.Fprintf(lw, "line %d\n", i)
		}
		if got := out.all(); len(got) != 0 {
			t.Fatalf("written before Close or the interval: %q", got)
		}
		if err := lw.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := out.all(), []string{"line 0\nline 1\nline 2\n"}; !slices.Equal(got, want) {
			t.Errorf("writes %q, want %q: one write of every line, in order", got, want)
		}
		fmt.Fprintf(lw, "after close\n")
		if got := out.all(); len(got) != 2 || got[1] != "after close\n" {
			t.Errorf("writes after Close %q, want the line written at once", got)
		}
	})
	t.Run("FlushedAfterInterval", func(t *testing.T) {
		out := &writes{}
		lw := newLogWriter(out, 10*time.Millisecond)
		defer lw.Close()
		fmt.Fprintf(lw, "first\n")
		waitUntil(t, 5*time.Second, "the first line written", func() bool { return len(out.all()) == 1 })
		fmt.Fprintf(lw, "second\n")
		waitUntil(t, 5*time.Second, "the second line written", func() bool { return len(out.all()) == 2 })
		if got, want := out.all(), []string{"first\n", "second\n"}; !slices.Equal(got, want) {
			t.Errorf("writes %q, want %q", got, want)
		}
	})
	t.Run("LinesKeptWhole", func(t *testing.T) {
		out := &writes{}
		lw := newLogWriter(out, time.Hour)
		line := strings.Repeat("x", logBufferSize/3) + "\n"
		for range 4 {
			lw.Write([]byte(line))
		}
		big := strings.Repeat("y", 2*logBufferSize) + "\n"
		lw.Write([]byte(big))
		lw.Close()
		var lines int
		for _, w := range out.all() {
			if !strings.HasSuffix(w, "\n") {
				t.Errorf("a write of %d bytes ends inside a line", len(w))
			}
			lines += strings.Count(w, "\n")
		}
		if lines != 5 {
			t.Errorf("%d lines written, want 5", lines)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		out := &writes{}
		lw := newLogWriter(out, time.Millisecond)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 200 {
					fmt.Fprintf(lw, "g%d-%d\n", g, i)
				}
			})
		}
		wg.Wait()
		lw.Close()
		got := strings.Join(out.all(), "")
		if n := strings.Count(got, "\n"); n != 8*200 {
			t.Errorf("%d lines written, want %d", n, 8*200)
		}
	})
}

// TestMain_LogFile runs the broker with its log going to a file, as a
// process's stdout does: the request lines reach the file within the flush
// interval, and all of them by the time Close returns.
func TestMain_LogFile(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "broker.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := NewMain()
	m.Config, m.Stdout, m.Now = h.config, f, h.clock.Now
	m.Config.StoreTarget = filepath.Join(t.TempDir(), "broker.db")
	m.Config.Store = "bolt:" + m.Config.StoreTarget
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	get := func(id string) {
		req, _ := http.NewRequest("GET", "http://"+m.Server.HTTPAddr()+"/healthz", nil)
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	logged := func(id string) bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(b), `"request_id":"`+id+`"`)
	}
	get("before-interval")
	waitUntil(t, 5*time.Second, "the request line in the file", func() bool { return logged("before-interval") })
	get("before-close")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !logged("before-close") {
		t.Error("a request line logged before Close is not in the file after it")
	}
}
