package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushInterval is the longest a log line waits in logWriter's buffer: what
// a crash (as opposed to a normal end, which flushes) may lose.
const logFlushInterval = 200 * time.Millisecond

// logBufferSize is the size of logWriter's buffer; a full buffer is written
// out at once.
const logBufferSize = 64 << 10

// logWriter buffers the log lines written to it and writes them to w in
// batches: when its buffer fills, at most logFlushInterval after a line
// arrives in an empty buffer, and at Close. Writing every request log line to
// stdout with its own write(2) cost about a tenth of a partner-token call over
// gRPC; a batch costs one for many lines. Lines are kept whole and in order.
// After Close, lines go straight to w. It is safe for concurrent use.
type logWriter struct {
	interval time.Duration

	mu      sync.Mutex
	w       io.Writer
	buf     *bufio.Writer
	timer   *time.Timer
	pending bool // the timer is armed
	closed  bool
}

// newLogWriter returns a logWriter in front of w that flushes at most
// interval after a line arrives.
func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	lw := &logWriter{interval: interval, w: w, buf: bufio.NewWriterSize(w, logBufferSize)}
	lw.timer = time.AfterFunc(interval, lw.flush)
	lw.timer.Stop()
	return lw
}

// Write buffers p, a log line, and arms the flush timer when the buffer was
// empty. It returns the error of writing the buffer out when p filled it.
func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return lw.w.Write(p)
	}
	if len(p) > lw.buf.Available() && lw.buf.Buffered() > 0 {
		// Write out what is buffered first, so that no line is split
		// between two writes.
		if err := lw.buf.Flush(); err != nil {
			return 0, err
		}
	}
	n, err := lw.buf.Write(p)
	if !lw.pending && lw.buf.Buffered() > 0 {
		lw.pending = true
		lw.timer.Reset(lw.interval)
	}
	return n, err
}

// flush writes out what is buffered; the timer calls it.
func (lw *logWriter) flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.pending = false
	_ = lw.buf.Flush() // nowhere to report a log's error
}

// Close writes out what is buffered and makes later lines go straight to w.
// It returns the error of that last write.
func (lw *logWriter) Close() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.timer.Stop()
	lw.closed = true
	return lw.buf.Flush()
}
