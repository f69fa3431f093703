// Package retry holds the broker's one formula of the wait between attempts,
// shared by the deliverers of reports and of webhooks.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff returns the wait after the attempts-th failed attempt: the interval
// minWait·2^(attempts−1), capped at maxWait, spread by ±50 % jitter, drawn
// uniformly from [interval/2, interval·3/2]. It returns 0 when the interval is
// not positive.
//
// This is the attempts-th NextBackOff of a new backoff.ExponentialBackOff
// (github.com/cenkalti/backoff/v5) with InitialInterval minWait, Multiplier 2,
// RandomizationFactor 0.5 and MaxInterval maxWait. The library has no closed
// form for it: its interval is hidden state that only NextBackOff advances,
// one step and one random draw per call, while a stored delivery keeps only
// its count of attempts (the next attempt may be another process's). So the
// formula is written here, once.
func Backoff(attempts int, minWait, maxWait time.Duration) time.Duration {
	interval := maxWait
	if doublings := min(max(attempts-1, 0), 62); minWait <= maxWait>>doublings {
		interval = minWait << doublings // no overflow: it is at most maxWait
	}
	if interval <= 0 {
		return 0
	}
	return interval/2 + rand.N(interval+1)
}
