package sim

import (
	"net/http"
	"sync"
	"time"
)

// alexaAPI is what each API of the Alexa simulator keeps for itself: the
// Health profile API (Alexa) and the Event Gateway (EventGateway) both embed
// one, so that its exported methods, the fault controls and Stats, are theirs.
// R is the record of one accepted request. Its methods are safe for
// concurrent use.
type alexaAPI[R any] struct {
	lwa              *LWA
	now              func() time.Time
	retryAfterAsDate bool

	mu         sync.Mutex
	received   map[string][]R    // user → accepted records, in arrival order
	forbidden  map[string]string // user → the code of the 403 answer
	faults     faultQueue        // injected failures and delay
	rejectNext int               // valid tokens still to answer 401
	stats      AlexaStats
}

// newAlexaAPI returns the state of one API of an Alexa simulator configured
// by opts, whose LWA and Now are set.
func newAlexaAPI[R any](opts AlexaOptions) alexaAPI[R] {
	return alexaAPI[R]{
		lwa:              opts.LWA,
		now:              opts.Now,
		retryAfterAsDate: opts.RetryAfterAsDate,
		received:         make(map[string][]R),
		forbidden:        make(map[string]string),
	}
}

// RestoreUser undoes Alexa.RevokeUser or EventGateway.ForbidUser on the API
// it is called on, as when the user enables the skill again.
func (s *alexaAPI[R]) RestoreUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.forbidden, user)
}

// FailNext makes the next n requests fail with HTTP status (500, 503 and 429
// are typical), before any other check, answered as the API answers that
// status (the codes are listed at Alexa and at EventGateway); a retryAfter
// above zero adds a Retry-After header, in whole seconds rounded up or as a
// date (AlexaOptions.RetryAfterAsDate). Failures queue up behind those
// injected earlier.
func (s *alexaAPI[R]) FailNext(n, status int, retryAfter time.Duration) {
	s.faults.add(n, status, retryAfter)
}

// ThrottleNext makes the next n requests answer 429 (TOO_MANY_REQUESTS at the
// Health API, THROTTLING_EXCEPTION at the Event Gateway), with a Retry-After
// header when retryAfter is above zero.
func (s *alexaAPI[R]) ThrottleNext(n int, retryAfter time.Duration) {
	s.FailNext(n, http.StatusTooManyRequests, retryAfter)
}

// RejectTokenNext makes the next n requests whose token is checked answer 401
// (INVALID_ACCESS_TOKEN at the Health API, INVALID_ACCESS_TOKEN_EXCEPTION at
// the Event Gateway), even when the token is valid, as when Amazon
// invalidated it early. The Health API checks the token of every POST that
// carries a bearer token, the Event Gateway that of every well-formed event.
// Failures injected with FailNext are answered first.
func (s *alexaAPI[R]) RejectTokenNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectNext += n
}

// SetDelay makes every answer wait d before it is given; zero answers at once.
// A waiting request ends without an answer when its client goes away.
func (s *alexaAPI[R]) SetDelay(d time.Duration) { s.faults.setDelay(d) }

// ClearFaults removes pending injected failures and token rejections, and the
// delay. Users revoked with Alexa.RevokeUser or forbidden with
// EventGateway.ForbidUser stay so, until RestoreUser.
func (s *alexaAPI[R]) ClearFaults() {
	s.faults.clear()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectNext = 0
}

// Stats returns a snapshot of the API's request counters.
func (s *alexaAPI[R]) Stats() AlexaStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// forbid makes the API answer 403 with code to user until RestoreUser.
func (s *alexaAPI[R]) forbid(user, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[user] = code
}

// count changes the counters under the lock.
func (s *alexaAPI[R]) count(f func(*AlexaStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// admit counts a request, waits the delay and, when a failure was injected,
// answers it: it sets Retry-After and has write write the answer for the
// failure's status. It reports whether the request goes on; false when it was
// answered or its client went away first.
func (s *alexaAPI[R]) admit(w http.ResponseWriter, r *http.Request, write func(w http.ResponseWriter, status int)) bool {
	s.count(func(st *AlexaStats) { st.Requests++ })
	if !s.faults.wait(r.Context()) {
		return false
	}
	f, ok := s.faults.next()
	if !ok {
		return true
	}
	s.count(func(st *AlexaStats) { st.Faulted++ })
	f.setRetryAfter(w.Header(), s.now(), s.retryAfterAsDate)
	write(w, f.status)
	return false
}

// checkToken decides a request with token: it returns the user LWA issued the
// token for and status 0 when the request may go on; 401 when the token is
// invalid or expired, or rejected by RejectTokenNext; 403 and the code given
// to forbid when the user is forbidden. It counts the 401 and 403 answers,
// which the caller writes.
func (s *alexaAPI[R]) checkToken(token string) (user string, status int, code string) {
	s.mu.Lock()
	reject := s.rejectNext > 0
	if reject {
		s.rejectNext--
	}
	s.mu.Unlock()
	user, valid := s.lwa.AccessTokenUser(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if reject || !valid {
		s.stats.Unauthorized++
		return "", http.StatusUnauthorized, ""
	}
	if code, forbidden := s.forbidden[user]; forbidden {
		s.stats.Forbidden++
		return "", http.StatusForbidden, code
	}
	return user, 0, ""
}

// accept records rec for user and counts it delivered.
func (s *alexaAPI[R]) accept(user string, rec R) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.received[user] = append(s.received[user], rec)
	s.stats.Delivered++
}

// receivedBy returns the records accepted for user, in arrival order, each
// copied by clone; nil when there are none.
func (s *alexaAPI[R]) receivedBy(user string, clone func(R) R) []R {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.received[user]
	if len(got) == 0 {
		return nil
	}
	out := make([]R, len(got))
	for i, rec := range got {
		out[i] = clone(rec)
	}
	return out
}
