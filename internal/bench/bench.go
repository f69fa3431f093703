// Package bench runs a load test: callers repeat one request, each as soon as
// its previous one is answered, for a while or a number of requests, and a
// Summary counts the answers by status and keeps their latencies in a
// Histogram. It knows nothing of the broker: `broker bench` gives it the
// request.
package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is what one request came to.
type Outcome struct {
	// OK is true when the request did what it asked (a 2xx answer, gRPC OK).
	OK bool
	// Status names the answer: an HTTP status code ("202"), a gRPC code
	// ("Unavailable"), or "timeout" or "transport" when no answer came.
	Status string
	// Detail says more of a failure, for people: the answer's body or
	// message, or the transport's error. It must hold no secret; the Summary
	// keeps the first of each Status.
	Detail string
}

// Request sends request number i of the run (from 0, unique within the run)
// and reports what it came to. It is called from many goroutines at once and
// must give up when ctx ends.
type Request func(ctx context.Context, i uint64) Outcome

// Options say how hard and how long Run drives a Request.
type Options struct {
	// Concurrency is the number of callers, at least 1.
	Concurrency int
	// Duration is how long the callers start new requests; requests under
	// way then are waited for. 0 means no limit (Requests must be set).
	Duration time.Duration
	// Requests, when above 0, stops the run after that many requests.
	Requests uint64
	// Timeout bounds each request; 0 leaves it to the Request.
	Timeout time.Duration
}

// Summary is what a run came to.
type Summary struct {
	// Concurrency is the number of callers of the run.
	Concurrency int
	// Requests counts the requests answered or failed; Errors those not OK.
	Requests, Errors uint64
	// Statuses counts the requests by Outcome.Status, successes included.
	Statuses map[string]uint64
	// Details holds the first Outcome.Detail of each failed Status.
	Details map[string]string
	// Elapsed is the run's time, from its start to the last answer.
	Elapsed time.Duration
	// Latency holds every request's time, failures included.
	Latency Histogram
	// Interrupted is true when ctx ended before the run did; requests
	// cut short by it are not counted.
	Interrupted bool
}

// Throughput is the number of requests per second of the run.
func (s *Summary) Throughput() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Elapsed.Seconds()
}

// Run calls req from opts.Concurrency callers until opts.Duration has passed
// or opts.Requests were sent, or ctx ends, and returns the Summary. It returns
// an error only for Options it cannot run with.
func Run(ctx context.Context, opts Options, req Request) (*Summary, error) {
	switch {
	case opts.Concurrency < 1:
		return nil, fmt.Errorf("bench: concurrency %d, want at least 1", opts.Concurrency)
	case opts.Duration < 0 || opts.Timeout < 0:
		return nil, fmt.Errorf("bench: negative duration or timeout")
	case opts.Duration == 0 && opts.Requests == 0:
		return nil, fmt.Errorf("bench: neither a duration nor a number of requests")
	}
	start := time.Now()
	var deadline time.Time
	if opts.Duration > 0 {
		deadline = start.Add(opts.Duration)
	}
	var (
		next    atomic.Uint64
		wg      sync.WaitGroup
		callers = make([]*Summary, opts.Concurrency)
	)
	for c := range callers {
		s := newSummary()
		callers[c] = s
		wg.Go(func() {
			for ctx.Err() == nil {
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				i := next.Add(1) - 1
				if opts.Requests > 0 && i >= opts.Requests {
					return
				}
				rctx, cancel := ctx, context.CancelFunc(func() {})
				if opts.Timeout > 0 {
					rctx, cancel = context.WithTimeout(ctx, opts.Timeout)
				}
				t0 := time.Now()
				out := req(rctx, i)
				d := time.Since(t0)
				cancel()
				if ctx.Err() != nil {
					return // cut short by the interruption, not by the server
				}
				s.add(out, d)
			}
		})
	}
	wg.Wait()
	sum := newSummary()
	sum.Concurrency = opts.Concurrency
	sum.Elapsed = time.Since(start)
	sum.Interrupted = ctx.Err() != nil
	for _, s := range callers {
		sum.merge(s)
	}
	return sum, nil
}

// newSummary returns an empty Summary.
func newSummary() *Summary {
	return &Summary{Statuses: map[string]uint64{}, Details: map[string]string{}}
}

// add counts one request.
func (s *Summary) add(out Outcome, d time.Duration) {
	s.Requests++
	s.Statuses[out.Status]++
	if !out.OK {
		s.Errors++
		if _, ok := s.Details[out.Status]; !ok {
			s.Details[out.Status] = out.Detail
		}
	}
	s.Latency.Record(d)
}

// merge adds o's counts to s.
func (s *Summary) merge(o *Summary) {
	s.Requests += o.Requests
	s.Errors += o.Errors
	for k, n := range o.Statuses {
		s.Statuses[k] += n
	}
	for k, d := range o.Details {
		if _, ok := s.Details[k]; !ok {
			s.Details[k] = d
		}
	}
	s.Latency.Merge(&o.Latency)
}

// maxDetail is the most of a Detail that Write prints.
const maxDetail = 200

// Write prints the summary for people, such as:
//
//	requests     12345 in 10.0s, 16 callers: 1234.5/s
//	ok           12340 (200: 12340)
//	errors       5 (503: 3, timeout: 2)
//	  503        {"code":14,"message":"the store cannot be reached"}
//	  timeout    context deadline exceeded
//	latency      p50 1.21ms  p90 2.3ms  p99 8.1ms  max 20.3ms
func (s *Summary) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "requests     %d in %v, %d callers: %.1f/s\n", s.Requests, round(s.Elapsed), s.Concurrency, s.Throughput())
	var ok, failed []string
	for _, k := range slices.Sorted(maps.Keys(s.Statuses)) {
		if _, isError := s.Details[k]; isError {
			failed = append(failed, fmt.Sprintf("%s: %d", k, s.Statuses[k]))
		} else {
			ok = append(ok, fmt.Sprintf("%s: %d", k, s.Statuses[k]))
		}
	}
	fmt.Fprintf(&b, "ok           %d", s.Requests-s.Errors)
	if len(ok) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(ok, ", "))
	}
	fmt.Fprintf(&b, "\nerrors       %d", s.Errors)
	if len(failed) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(failed, ", "))
	}
	b.WriteString("\n")
	for _, k := range slices.Sorted(maps.Keys(s.Details)) {
		d := strings.Join(strings.Fields(s.Details[k]), " ")
		for i := range d { // cut at a rune's start
			if i >= maxDetail {
				d = d[:i] + "…"
				break
			}
		}
		fmt.Fprintf(&b, "  %-10s %s\n", k, d)
	}
	if s.Requests > 0 {
		fmt.Fprintf(&b, "latency      p50 %v  p90 %v  p99 %v  max %v\n",
			round(s.Latency.Percentile(50)), round(s.Latency.Percentile(90)), round(s.Latency.Percentile(99)), round(s.Latency.Max()))
	}
	if s.Interrupted {
		b.WriteString("interrupted: the run stopped early\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// round keeps three significant digits or more of d: 1.23ms, 123µs, 12.3s.
func round(d time.Duration) time.Duration {
	for _, unit := range []time.Duration{time.Second, time.Millisecond, time.Microsecond} {
		if d >= unit {
			return d.Round(unit / 100)
		}
	}
	return d
}
