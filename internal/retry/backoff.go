// Package retry holds the broker's one formula of the wait between attempts,
// shared by the deliverers of reports and of webhooks.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff returns the wait after the attempts-th failed attempt: the interval
// minWait·2^(attempts−1), capped at maxWait, spread by jitter, drawn uniformly
// from [interval/2, interval·3/2] but never past maxWait: waits are "at most
// maxWait apart" (the webhook contract's 10 min), so once the interval reaches
// maxWait they are drawn from [maxWait/2, maxWait]. It returns 0 when the
// interval is not positive.
//
// While interval·3/2 is at most maxWait, this is the attempts-th
// NextBackOff of a new backoff.ExponentialBackOff
// (github.com/cenkalti/backoff/v5) with InitialInterval minWait, Multiplier
// 2, RandomizationFactor 0.5 and MaxInterval maxWait; the library would
// spread a larger interval past maxWait, up to maxWait·3/2. It has no closed form for it either: its interval is hidden
// state that only NextBackOff advances, one step and one random draw per call,
// while a stored delivery keeps only its count of attempts (the next attempt
// may be another process's). So the formula is written here, once.
func Backoff(attempts int, minWait, maxWait time.Duration) time.Duration {
	interval := maxWait
	if doublings := min(max(attempts-1, 0), 62); minWait <= maxWait>>doublings {
		interval = minWait << doublings // no overflow: it is at most maxWait
	}
	if interval <= 0 {
		return 0
	}
	low := interval / 2
	// low+span is at most maxWait, so it cannot overflow either.
	span := min(interval, maxWait-low)
	return low + rand.N(span+1)
}
