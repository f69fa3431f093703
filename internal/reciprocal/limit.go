package reciprocal

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Rate is how many hand-overs one user, or one client, may make: Count per
// Per, up to Count of them at once (a token bucket of Count tokens, refilled
// evenly over Per). A zero Count is no limit.
type Rate struct {
	Count int
	Per   time.Duration
}

// The default rates. A user links a skill once, and Alexa retries a failed
// hand-over a few times; ten a minute leaves room for both, and caps what
// made-up codes of one user cost at ten LWA calls a minute. All of a skill's
// users hand over through the one client id the partner issued to Alexa, so
// its rate is the broker's whole hand-over rate: 1200 a minute (20 a second,
// 1200 at once) is far beyond a launch-day linking rush.
var (
	DefaultUserRate   = Rate{Count: 10, Per: time.Minute}
	DefaultClientRate = Rate{Count: 1200, Per: time.Minute}
)

// String returns r as COUNT/PER, like 10/1m0s, or 0 for no limit.
func (r Rate) String() string {
	if r.Count == 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Per)
}

// Limiter limits hand-overs per user (the token's subject) and per client (the
// token's client), so that neither one user nor one client can make the
// broker call LWA without bound, with made-up codes for instance. It is safe
// for concurrent use; a nil Limiter limits nothing.
//
// Its memory is bounded: a user's or a client's bucket is kept only until it
// is full again (at most Per after the last hand-over), as a full bucket is
// what a new one would be. A user's bucket is only taken from when the
// client's allows too, so the users' buckets that are kept are bounded by the
// clients' rates.
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex
	users   *buckets
	clients *buckets
}

// NewLimiter returns a Limiter of perUser hand-overs for each user and
// perClient for each client, on the clock now (nil: time.Now).
func NewLimiter(perUser, perClient Rate, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, users: newBuckets(perUser), clients: newBuckets(perClient)}
}

// Allow takes one hand-over of the user and the client that p names from
// their allowances. It returns nil when both allow it, and otherwise an
// ERATELIMIT error, naming whether the user or the client asked too often,
// with how long to wait before the next try: a whole number of seconds, at
// least one. A hand-over that is refused takes nothing from either allowance.
func (l *Limiter) Allow(p auth.Principal) (retryAfter time.Duration, err error) {
	if l == nil {
		return 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	user, client := l.users.get(p.Subject, now), l.clients.get(p.ClientID, now)
	userWait, clientWait := wait(user, now), wait(client, now)
	switch {
	case userWait > 0 || clientWait > 0:
		who, d := "this user", userWait
		if clientWait > userWait {
			who, d = "this client", clientWait
		}
		d = max(time.Second, (d + time.Second - 1).Truncate(time.Second))
		return d, tokens.Errorf(tokens.ERATELIMIT, "too many hand-overs of %s; try again in %d s", who, d/time.Second)
	}
	if user != nil {
		user.AllowN(now, 1)
	}
	if client != nil {
		client.AllowN(now, 1)
	}
	return 0, nil
}

// wait returns how long until lim holds a whole token at now; 0 when it does,
// or when lim is nil (no limit).
func wait(lim *rate.Limiter, now time.Time) time.Duration {
	if lim == nil {
		return 0
	}
	missing := 1 - lim.TokensAt(now)
	if missing <= 0 {
		return 0
	}
	return time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
}

// minPrune is the fewest buckets a buckets keeps before it drops full ones.
const minPrune = 1024

// buckets are the token buckets of one kind of key (users or clients), made
// as keys come and dropped once full again. Its user holds the Limiter's lock.
type buckets struct {
	rate  Rate
	m     map[string]*rate.Limiter
	prune int // the size of m at which full buckets are dropped next
}

// newBuckets returns the buckets of r, or nil when r is no limit.
func newBuckets(r Rate) *buckets {
	if r.Count <= 0 || r.Per <= 0 {
		return nil
	}
	return &buckets{rate: r, m: map[string]*rate.Limiter{}, prune: minPrune}
}

// get returns the bucket of key, making a full one when there is none; nil
// when b is nil (no limit). Before it makes one, when b has grown to its prune
// size, it drops the buckets that are full again at now, and sets the next
// prune size to twice what is left: the work stays proportional to the keys
// made.
func (b *buckets) get(key string, now time.Time) *rate.Limiter {
	if b == nil {
		return nil
	}
	if lim, ok := b.m[key]; ok {
		return lim
	}
	if len(b.m) >= b.prune {
		for k, lim := range b.m {
			if lim.TokensAt(now) >= float64(lim.Burst()) {
				delete(b.m, k)
			}
		}
		b.prune = max(minPrune, 2*len(b.m))
	}
	lim := rate.NewLimiter(rate.Limit(float64(b.rate.Count)/b.rate.Per.Seconds()), b.rate.Count) // full
	b.m[key] = lim
	return lim
}

// size returns how many buckets b keeps.
func (b *buckets) size() int {
	if b == nil {
		return 0
	}
	return len(b.m)
}
