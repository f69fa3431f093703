package bench

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// server is a hand-written Request: each call takes latency (on synctest's
// clock), and fails with status "503" when fail says so.
type server struct {
	latency  time.Duration
	fail     func(i uint64) bool
	inFlight atomic.Int64
	peak     atomic.Int64
	mu       sync.Mutex
	seen     map[uint64]bool
}

func (s *server) request(ctx context.Context, i uint64) Outcome {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[uint64]bool{}
	}
	dup := s.seen[i]
	s.seen[i] = true
	s.mu.Unlock()
	if dup {
		return Outcome{Status: "duplicate", Detail: strconv.FormatUint(i, 10)}
	}
	select {
	case <-time.After(s.latency):
	case <-ctx.Done():
		return Outcome{Status: "timeout", Detail: ctx.Err().Error()}
	}
	if s.fail != nil && s.fail(i) {
		return Outcome{Status: "503", Detail: `{"code":14,"message":"unavailable"}`}
	}
	return Outcome{OK: true, Status: "200"}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		latency    time.Duration
		fail       func(uint64) bool
		requests   uint64
		errors     uint64
		statuses   map[string]uint64
		elapsed    time.Duration
		p50, max   time.Duration
		inSummary  []string
		peakAtMost int64
	}{
		{
			name: "duration", opts: Options{Concurrency: 4, Duration: time.Second}, latency: 10 * time.Millisecond,
			requests: 400, statuses: map[string]uint64{"200": 400}, elapsed: time.Second, p50: 10 * time.Millisecond, max: 10 * time.Millisecond,
			inSummary:  []string{"requests     400 in 1s, 4 callers: 400.0/s", "ok           400 (200: 400)", "errors       0\n", "p50 10ms  p90 10ms  p99 10ms  max 10ms"},
			peakAtMost: 4,
		},
		{
			name: "requests", opts: Options{Concurrency: 3, Requests: 10}, latency: time.Millisecond,
			requests: 10, statuses: map[string]uint64{"200": 10}, elapsed: 4 * time.Millisecond, p50: time.Millisecond, max: time.Millisecond,
			peakAtMost: 3,
		},
		{
			name: "errors by status", opts: Options{Concurrency: 2, Requests: 10}, latency: time.Millisecond,
			fail:     func(i uint64) bool { return i%5 == 0 },
			requests: 10, errors: 2, statuses: map[string]uint64{"200": 8, "503": 2}, elapsed: 5 * time.Millisecond, p50: time.Millisecond, max: time.Millisecond,
			inSummary:  []string{"ok           8 (200: 8)", "errors       2 (503: 2)", `  503        {"code":14,"message":"unavailable"}`},
			peakAtMost: 2,
		},
		{
			name: "timeout", opts: Options{Concurrency: 1, Requests: 2, Timeout: 50 * time.Millisecond}, latency: time.Second,
			requests: 2, errors: 2, statuses: map[string]uint64{"timeout": 2}, elapsed: 100 * time.Millisecond, p50: 50 * time.Millisecond, max: 50 * time.Millisecond,
			inSummary:  []string{"errors       2 (timeout: 2)", "  timeout    context deadline exceeded"},
			peakAtMost: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := &server{latency: tt.latency, fail: tt.fail}
				s, err := Run(t.Context(), tt.opts, srv.request)
				if err != nil {
					t.Fatal(err)
				}
				if s.Requests != tt.requests || s.Errors != tt.errors || s.Elapsed != tt.elapsed || s.Interrupted {
					t.Errorf("requests %d errors %d elapsed %v interrupted %v, want %d, %d, %v, false", s.Requests, s.Errors, s.Elapsed, s.Interrupted, tt.requests, tt.errors, tt.elapsed)
				}
				if len(s.Statuses) != len(tt.statuses) {
					t.Errorf("statuses %v, want %v", s.Statuses, tt.statuses)
				}
				for k, n := range tt.statuses {
					if s.Statuses[k] != n {
						t.Errorf("statuses %v, want %v", s.Statuses, tt.statuses)
					}
				}
				if got := s.Latency.Percentile(50); got != tt.p50 || s.Latency.Max() != tt.max {
					t.Errorf("p50 %v max %v, want %v and %v", got, s.Latency.Max(), tt.p50, tt.max)
				}
				if p := srv.peak.Load(); p > tt.peakAtMost {
					t.Errorf("%d requests at once, want at most %d", p, tt.peakAtMost)
				}
				var out bytes.Buffer
				if err := s.Write(&out); err != nil {
					t.Fatal(err)
				}
				for _, want := range tt.inSummary {
					if !strings.Contains(out.String(), want) {
						t.Errorf("summary lacks %q:\n%s", want, out.String())
					}
				}
			})
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		srv := &server{latency: 10 * time.Millisecond}
		time.AfterFunc(25*time.Millisecond, cancel)
		s, err := Run(ctx, Options{Concurrency: 2, Duration: time.Hour}, srv.request)
		if err != nil {
			t.Fatal(err)
		}
		// Two callers answered twice each; the third requests were cut short
		// and are not counted.
		if !s.Interrupted || s.Requests != 4 || s.Errors != 0 || s.Elapsed != 25*time.Millisecond {
			t.Errorf("interrupted %v, %d requests, %d errors in %v; want true, 4, 0 in 25ms", s.Interrupted, s.Requests, s.Errors, s.Elapsed)
		}
		var out bytes.Buffer
		_ = s.Write(&out)
		if !strings.Contains(out.String(), "interrupted") {
			t.Errorf("summary does not say it was interrupted:\n%s", out.String())
		}
	})
}

func TestRunOptions(t *testing.T) {
	req := func(context.Context, uint64) Outcome { return Outcome{OK: true, Status: "200"} }
	for _, opts := range []Options{
		{Concurrency: 0, Duration: time.Second},
		{Concurrency: 1},
		{Concurrency: 1, Duration: -time.Second},
		{Concurrency: 1, Requests: 1, Timeout: -1},
	} {
		if _, err := Run(t.Context(), opts, req); err == nil {
			t.Errorf("Run(%+v) = nil error", opts)
		}
	}
}

func TestWriteCutsDetails(t *testing.T) {
	s := newSummary()
	s.Concurrency = 1
	s.add(Outcome{Status: "500", Detail: strings.Repeat("é", 300) + "\n  tail"}, time.Millisecond)
	var out bytes.Buffer
	_ = s.Write(&out)
	line := strings.Split(out.String(), "\n")[3]
	if !strings.HasSuffix(line, "é…") || strings.Contains(out.String(), "tail") {
		t.Errorf("detail line %q: want it cut at a rune, with …", line)
	}
}
