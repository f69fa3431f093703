package sim

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// webhookTolerance is how far a webhook-timestamp may be from the receiver's
// clock, as the Standard Webhooks libraries allow.
const webhookTolerance = 5 * time.Minute

// WebhooksOptions configures a webhook receiver simulator.
type WebhooksOptions struct {
	// Addr is the loopback address to listen on; empty means "127.0.0.1:0".
	Addr string
	// Secret is the webhook secret the broker signs with; empty means a new
	// random one of 32 bytes.
	Secret tokens.Secret
	// Now is the receiver's clock for the timestamp check; nil means time.Now.
	Now func() time.Time
}

// ReceivedWebhook is one request the webhook receiver got.
type ReceivedWebhook struct {
	// ID, Timestamp and Signature are the webhook-id, webhook-timestamp and
	// webhook-signature headers.
	ID, Timestamp, Signature string
	// Body is the body, byte for byte.
	Body []byte
	// Event is the body read as an event; zero when it is not JSON.
	Event WebhookEvent
	// Verified says whether the signature matched under the secret and the
	// timestamp was within 5 minutes of the receiver's clock.
	Verified bool
	// Status is what the receiver answered; 0 when it hung until the client
	// went away.
	Status int
	// At is when it arrived.
	At time.Time
}

// WebhookEvent is a webhook's body.
type WebhookEvent struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt string         `json:"occurred_at"`
	UserID     string         `json:"user_id"`
	SkillID    string         `json:"skill_id"`
	Actor      string         `json:"actor"`
	Data       map[string]any `json:"data"`
}

// Webhooks simulates the partner's companion backend receiving the broker's
// webhooks: it records every request, verifies its Standard Webhooks
// signature (written here from the specification's text, independently of the
// broker's signer), and answers 204, or 401 to a request whose signature does
// not verify. Faults make it fail (FailNext, SetDown), throttle with 429 and
// Retry-After (ThrottleNext), or answer slowly or hang (SetDelay).
type Webhooks struct {
	secret tokens.Secret
	key    []byte
	addr   string
	now    func() time.Time
	srv    server
	faults faultQueue

	mu   sync.Mutex
	got  []ReceivedWebhook
	down bool
}

// NewWebhooks returns a receiver; Start starts it.
func NewWebhooks(opts WebhooksOptions) *Webhooks {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Secret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		opts.Secret = tokens.Secret("whsec_" + base64.StdEncoding.EncodeToString(b))
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(opts.Secret.Reveal(), "whsec_"))
	return &Webhooks{secret: opts.Secret, key: key, addr: opts.Addr, now: opts.Now}
}

// Start listens and serves until Close is called or ctx is done.
func (h *Webhooks) Start(ctx context.Context) error {
	return h.srv.start(ctx, "webhook receiver", h.addr, h)
}

// Close stops the receiver.
func (h *Webhooks) Close() { h.srv.close() }

// URL returns where the broker is to POST, such as
// "http://127.0.0.1:41234/webhooks".
func (h *Webhooks) URL() string { return h.srv.url() + "/webhooks" }

// Secret returns the webhook secret the receiver verifies with.
func (h *Webhooks) Secret() tokens.Secret { return h.secret }

// FailNext answers the next n webhooks with status.
func (h *Webhooks) FailNext(n, status int) { h.faults.add(n, status, 0) }

// ThrottleNext answers the next n webhooks 429 with Retry-After.
func (h *Webhooks) ThrottleNext(n int, retryAfter time.Duration) {
	h.faults.add(n, http.StatusTooManyRequests, retryAfter)
}

// SetDelay makes every answer wait d (a long d hangs); zero answers at once.
func (h *Webhooks) SetDelay(d time.Duration) { h.faults.setDelay(d) }

// SetDown makes the receiver answer 503 to everything while down is true.
func (h *Webhooks) SetDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// ClearFaults removes the queued failures, the delay and the outage.
func (h *Webhooks) ClearFaults() {
	h.faults.clear()
	h.SetDown(false)
}

// Received returns every request so far, in the order they arrived.
func (h *Webhooks) Received() []ReceivedWebhook {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ReceivedWebhook(nil), h.got...)
}

// Delivered returns the events of the requests answered 2xx with a verified
// signature, in the order they arrived.
func (h *Webhooks) Delivered() []WebhookEvent {
	var out []WebhookEvent
	for _, r := range h.Received() {
		if r.Verified && r.Status >= 200 && r.Status < 300 {
			out = append(out, r.Event)
		}
	}
	return out
}

// ServeHTTP receives one webhook.
func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/webhooks" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	got := ReceivedWebhook{
		ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature"),
		Body: body, At: h.now(),
	}
	_ = json.Unmarshal(body, &got.Event)
	got.Verified = h.verify(got) && r.Header.Get("Content-Type") == "application/json"
	h.mu.Lock()
	i := len(h.got)
	h.got = append(h.got, got)
	down := h.down
	h.mu.Unlock()

	status := http.StatusNoContent
	if !h.faults.wait(r.Context()) {
		return // hung until the broker gave up; recorded with Status 0
	}
	switch f, ok := h.faults.next(); {
	case !got.Verified:
		status = http.StatusUnauthorized
	case down:
		status = http.StatusServiceUnavailable
	case ok:
		status = f.status
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(f.retryAfterSeconds(), 10))
		}
	}
	h.mu.Lock()
	h.got[i].Status = status
	h.mu.Unlock()
	w.WriteHeader(status)
}

// verify checks got's signature as the Standard Webhooks specification says:
// one of the space-separated "v1,<base64>" signatures equals the HMAC-SHA256,
// keyed by the secret's bytes, of "{id}.{timestamp}.{body}", and the timestamp
// is within webhookTolerance of now.
func (h *Webhooks) verify(got ReceivedWebhook) bool {
	ts, err := strconv.ParseInt(got.Timestamp, 10, 64)
	if err != nil || got.ID == "" {
		return false
	}
	if d := h.now().Sub(time.Unix(ts, 0)); d > webhookTolerance || d < -webhookTolerance {
		return false
	}
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(got.ID + "." + got.Timestamp + "."))
	mac.Write(got.Body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(got.Signature) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		if b, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(b, want) {
			return true
		}
	}
	return false
}
