// Package retryafter reads the Retry-After header (RFC 9110 §10.2.3) that
// Amazon's services send with 429 and 503 answers, for the broker's HTTP clients.
package retryafter

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Parse returns the wait that a Retry-After value asks for: a number of seconds
// or an HTTP date, measured from now. It returns 0 for an empty or unreadable
// value or a date in the past, and never more than limit.
func Parse(v string, now time.Time, limit time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	secs, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err == nil:
		d = time.Duration(min(secs, int64(limit/time.Second))) * time.Second
	case errors.Is(err, strconv.ErrRange) && secs > 0:
		d = limit // more seconds than an int64 holds: as long as allowed
	default:
		if t, err := http.ParseTime(v); err == nil {
			d = min(t.Sub(now), limit)
		}
	}
	return max(d, 0)
}
