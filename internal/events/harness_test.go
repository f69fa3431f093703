package events_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// testSecret is the webhook secret of the deliverer tests: 32 bytes.
var testSecret = tokens.Secret("whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")))

// received is one request the test receiver got.
type received struct {
	at        time.Time
	id, ts    string
	signature string
	body      []byte
	event     map[string]any
}

// receiver answers the deliverer's requests in the test's bubble, through the
// client's transport (a real listener would keep synctest's clock from
// moving). answer decides each answer; nil answers 204.
type receiver struct {
	tb     testing.TB
	mu     sync.Mutex
	got    []received
	answer func(r *http.Request, n int) (*http.Response, error)
	// inFlight counts requests being answered, by user.
	inFlight, maxInFlight map[string]int
}

func newReceiver(tb testing.TB) *receiver {
	return &receiver{tb: tb, inFlight: map[string]int{}, maxInFlight: map[string]int{}}
}

func (rc *receiver) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.Body == nil {
		rc.tb.Errorf("%s %s without a body", r.Method, r.URL)
		return status(r, http.StatusMethodNotAllowed, ""), nil
	}
	body, _ := io.ReadAll(r.Body)
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.tb.Errorf("webhook body is not JSON: %v: %s", err, body)
	}
	user, _ := ev["user_id"].(string)
	rc.mu.Lock()
	n := len(rc.got)
	rc.got = append(rc.got, received{at: time.Now(), id: r.Header.Get("webhook-id"), ts: r.Header.Get("webhook-timestamp"),
		signature: r.Header.Get("webhook-signature"), body: body, event: ev})
	rc.inFlight[user]++
	rc.maxInFlight[user] = max(rc.maxInFlight[user], rc.inFlight[user])
	answer := rc.answer
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inFlight[user]--
		rc.mu.Unlock()
	}()
	if r.Header.Get("Content-Type") != "application/json" {
		rc.tb.Errorf("Content-Type = %q", r.Header.Get("Content-Type"))
	}
	if answer == nil {
		return status(r, http.StatusNoContent, ""), nil
	}
	return answer(r, n)
}

// requests returns what was received so far.
func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// status is an answer with code and, when not empty, a Retry-After.
func status(r *http.Request, code int, retryAfter string) *http.Response {
	h := http.Header{}
	if retryAfter != "" {
		h.Set("Retry-After", retryAfter)
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}
}

// hang answers nothing until the request ends.
func hang(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

// verify checks a received webhook's signature from the specification's text,
// independently of events.Signer.
func verify(tb testing.TB, secret tokens.Secret, got received) {
	tb.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret.Reveal(), "whsec_"))
	if err != nil {
		tb.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(got.id + "." + got.ts + "." + string(got.body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)); got.signature != want {
		tb.Errorf("webhook-signature = %q, want %q", got.signature, want)
	}
	ts, err := strconv.ParseInt(got.ts, 10, 64)
	if err != nil || ts != got.at.Unix() {
		tb.Errorf("webhook-timestamp = %q, want the attempt's time %d", got.ts, got.at.Unix())
	}
	if got.id != got.event["id"] {
		tb.Errorf("webhook-id = %q, body's id %v", got.id, got.event["id"])
	}
}

// counter is an events.Observer that counts.
type counter struct {
	mu                          sync.Mutex
	delivered, retried, givenUp int
}

func (c *counter) Delivered() { c.mu.Lock(); c.delivered++; c.mu.Unlock() }
func (c *counter) Retried()   { c.mu.Lock(); c.retried++; c.mu.Unlock() }
func (c *counter) GivenUp()   { c.mu.Lock(); c.givenUp++; c.mu.Unlock() }

func (c *counter) counts() (delivered, retried, givenUp int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.delivered, c.retried, c.givenUp
}

// newTestDeliverer returns a deliverer of store to rc, polling every 10 ms.
func newTestDeliverer(tb testing.TB, store events.Store, rc *receiver) (*events.Deliverer, *counter) {
	tb.Helper()
	d, err := events.NewDeliverer(store, "https://companion.example/hooks", testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	d.Client.Transport = rc // the deliverer's own client, answered in the bubble
	d.PollInterval = 10 * time.Millisecond
	c := &counter{}
	d.Observer = c
	return d, c
}

// run runs d until the test ends.
func run(tb testing.TB, d *events.Deliverer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
}

// event returns an event of user made now, n-th of the test.
func event(user string, typ tokens.EventType) tokens.Event {
	e := tokens.NewEvent(typ, user, tokens.ActorBroker, time.Now(), map[string]any{"reason": "invalid_grant"})
	return e
}

// waitFor moves the bubble's clock in steps of 10 ms until ok holds or limit
// passes.
func waitFor(tb testing.TB, limit time.Duration, ok func() bool) {
	tb.Helper()
	end := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(end) {
			tb.Fatalf("not within %s", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
