package sim

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultNames lists the faults Apply understands, for help texts.
const FaultNames = "lwa:invalid_grant, lwa:5xx, lwa:429, lwa:slow, alexa:401, alexa:403, alexa:429, alexa:5xx, alexa:slow, alexa-events:400, alexa-events:401, alexa-events:403, alexa-events:429, alexa-events:5xx, alexa-events:slow, webhook:5xx, webhook:429, webhook:slow"

// Faults switches the simulators' failure modes on by name, from the command
// line (broker sandbox --fault) or from the admin route. The alexa target is
// the Alexa Health API, alexa-events the Alexa Event Gateway (Alexa.Events).
type Faults struct {
	LWA   *LWA
	Alexa *Alexa
	// Webhooks is the webhook receiver; nil has no webhook faults.
	Webhooks *Webhooks
	// User is whom the user-specific faults (invalid_grant, 403) strike.
	User string
}

// Apply switches on one fault, named target:kind, with count repetitions where
// the fault is counted (0 means 3). It returns a sentence saying what changed.
func (f *Faults) Apply(name string, count int) (string, error) {
	if count <= 0 {
		count = 3
	}
	target, kind, _ := strings.Cut(name, ":")
	switch target + ":" + kind {
	case "lwa:invalid_grant":
		f.LWA.RevokeUser(f.User)
		return fmt.Sprintf("LWA now answers invalid_grant for %s's codes and refresh tokens", f.User), nil
	case "lwa:5xx":
		f.LWA.FailNext(count, http.StatusServiceUnavailable, 0)
		return fmt.Sprintf("LWA answers the next %d requests with 503", count), nil
	case "lwa:429":
		f.LWA.ThrottleNext(count, 2*time.Second)
		return fmt.Sprintf("LWA answers the next %d requests with 429, Retry-After: 2", count), nil
	case "lwa:slow":
		f.LWA.SetDelay(3 * time.Second)
		return "LWA now takes 3 s to answer", nil
	case "alexa:401":
		f.Alexa.RejectTokenNext(count)
		return fmt.Sprintf("the Alexa Health API refuses the next %d access tokens with 401", count), nil
	case "alexa:403":
		f.Alexa.RevokeUser(f.User)
		return fmt.Sprintf("the Alexa Health API answers 403 for %s: the skill was disabled", f.User), nil
	case "alexa:429":
		f.Alexa.ThrottleNext(count, 2*time.Second)
		return fmt.Sprintf("the Alexa Health API answers the next %d reports with 429, Retry-After: 2", count), nil
	case "alexa:5xx":
		f.Alexa.FailNext(count, http.StatusInternalServerError, 0)
		return fmt.Sprintf("the Alexa Health API answers the next %d reports with 500", count), nil
	case "alexa:slow":
		f.Alexa.SetDelay(3 * time.Second)
		return "the Alexa Health API now takes 3 s to answer", nil
	case "alexa-events:400":
		f.Alexa.Events().FailNext(count, http.StatusBadRequest, 0)
		return fmt.Sprintf("the Alexa Event Gateway answers the next %d events with 400 INVALID_REQUEST_EXCEPTION", count), nil
	case "alexa-events:401":
		f.Alexa.Events().RejectTokenNext(count)
		return fmt.Sprintf("the Alexa Event Gateway refuses the next %d access tokens with 401 INVALID_ACCESS_TOKEN_EXCEPTION", count), nil
	case "alexa-events:403":
		f.Alexa.Events().ForbidUser(f.User, EventSkillDisabled)
		return fmt.Sprintf("the Alexa Event Gateway answers 403 SKILL_DISABLED_EXCEPTION for %s", f.User), nil
	case "alexa-events:429":
		f.Alexa.Events().ThrottleNext(count, 2*time.Second)
		return fmt.Sprintf("the Alexa Event Gateway answers the next %d events with 429 THROTTLING_EXCEPTION, Retry-After: 2", count), nil
	case "alexa-events:5xx":
		f.Alexa.Events().FailNext(count, http.StatusInternalServerError, 0)
		return fmt.Sprintf("the Alexa Event Gateway answers the next %d events with 500 INTERNAL_SERVICE_EXCEPTION", count), nil
	case "alexa-events:slow":
		f.Alexa.Events().SetDelay(3 * time.Second)
		return "the Alexa Event Gateway now takes 3 s to answer", nil
	case "webhook:5xx":
		if f.Webhooks != nil {
			f.Webhooks.FailNext(count, http.StatusServiceUnavailable)
			return fmt.Sprintf("the webhook receiver answers the next %d webhooks with 503", count), nil
		}
	case "webhook:429":
		if f.Webhooks != nil {
			f.Webhooks.ThrottleNext(count, 2*time.Second)
			return fmt.Sprintf("the webhook receiver answers the next %d webhooks with 429, Retry-After: 2", count), nil
		}
	case "webhook:slow":
		if f.Webhooks != nil {
			f.Webhooks.SetDelay(3 * time.Second)
			return "the webhook receiver now takes 3 s to answer", nil
		}
	}
	return "", fmt.Errorf("unknown fault %q (known: %s)", name, FaultNames)
}

// Clear switches every fault off: no injected failures or delays, and the user
// restored at the Alexa Health API and the Event Gateway. (LWA's invalid_grant
// stands: revoked grants stay revoked, as on LWA; a new hand-over links again.)
func (f *Faults) Clear() string {
	f.LWA.ClearFaults()
	f.Alexa.ClearFaults()
	f.Alexa.RestoreUser(f.User)
	f.Alexa.Events().ClearFaults()
	f.Alexa.Events().RestoreUser(f.User)
	if f.Webhooks != nil {
		f.Webhooks.ClearFaults()
	}
	return "faults cleared"
}

// Handler is the admin route: POST /faults/{target}/{kind}?count=N switches a
// fault on, DELETE /faults switches them off. It answers JSON
// {"result":"…"} or {"error":"…"}.
func (f *Faults) Handler() http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, key, msg string) {
		writeJSON(w, status, map[string]string{key: msg})
	}
	mux.HandleFunc("POST /faults/{target}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		count, _ := strconv.Atoi(r.URL.Query().Get("count"))
		msg, err := f.Apply(r.PathValue("target")+":"+r.PathValue("kind"), count)
		if err != nil {
			reply(w, http.StatusBadRequest, "error", err.Error())
			return
		}
		reply(w, http.StatusOK, "result", msg)
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, http.StatusOK, "result", f.Clear())
	})
	return mux
}

// fault is one injected failure: an HTTP status, with a Retry-After when
// retryAfter is above zero.
type fault struct {
	status     int
	retryAfter time.Duration
}

// faultQueue holds a simulator's injected failures, answered in order, and the
// delay before every answer. It is safe for concurrent use.
type faultQueue struct {
	mu    sync.Mutex
	queue []fault
	delay time.Duration
}

// add queues n failures behind those injected earlier.
func (q *faultQueue) add(n, status int, retryAfter time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		q.queue = append(q.queue, fault{status: status, retryAfter: retryAfter})
	}
}

// setDelay makes every answer wait d; zero answers at once.
func (q *faultQueue) setDelay(d time.Duration) {
	q.mu.Lock()
	q.delay = d
	q.mu.Unlock()
}

// clear removes the queued failures and the delay.
func (q *faultQueue) clear() {
	q.mu.Lock()
	q.queue, q.delay = nil, 0
	q.mu.Unlock()
}

// wait sleeps the delay; it reports false when ctx ended first (the client went
// away), and the request then ends without an answer.
func (q *faultQueue) wait(ctx context.Context) bool {
	q.mu.Lock()
	d := q.delay
	q.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// next takes the next queued failure, if any.
func (q *faultQueue) next() (fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return fault{}, false
	}
	f := q.queue[0]
	q.queue = q.queue[1:]
	return f, true
}

// retryAfterSeconds is a Retry-After wait in whole seconds, rounded up.
func (f fault) retryAfterSeconds() int64 {
	return int64((f.retryAfter + time.Second - 1) / time.Second)
}

// setRetryAfter sets h's Retry-After header when the failure has a wait: in
// whole seconds, rounded up, or, with asDate, as the HTTP date that many
// seconds after now (itself rounded up to a whole second).
func (f fault) setRetryAfter(h http.Header, now time.Time, asDate bool) {
	if f.retryAfter <= 0 {
		return
	}
	secs := f.retryAfterSeconds()
	if !asDate {
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
		return
	}
	at := now.UTC()
	if at.Truncate(time.Second) != at {
		at = at.Truncate(time.Second).Add(time.Second)
	}
	h.Set("Retry-After", at.Add(time.Duration(secs)*time.Second).Format(http.TimeFormat))
}
