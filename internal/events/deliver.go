package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/retry"
	"github.com/reciprocal-broker/broker/internal/retryafter"
	"github.com/reciprocal-broker/broker/internal/settle"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Defaults of a Deliverer.
const (
	// DefaultDeadline is the default of Deliverer.Deadline.
	DefaultDeadline = 24 * time.Hour
	// DefaultConcurrency is the default of Deliverer.Concurrency.
	DefaultConcurrency = 8
	// SendTimeout bounds one POST: no answer within it is a failed attempt.
	SendTimeout = 10 * time.Second
	// claimTTL is how long an attempt holds the user and the webhook: one
	// POST and the writes around it.
	claimTTL = 3 * SendTimeout
	// releaseTimeout bounds the write that gives a user's claim back, and the
	// write of an attempt's outcome, also when Run's context has ended.
	releaseTimeout = 5 * time.Second
	// maxAnswer is how much of an answer's body is read, so that the
	// connection can be used again.
	maxAnswer = 64 << 10
)

// DefaultTypes are the event types sent to the webhook unless configured
// otherwise: a link's life and failed deliveries, not its routine refreshes
// and deliveries.
var DefaultTypes = []tokens.EventType{tokens.EventLinked, tokens.EventRelinkRequired, tokens.EventDeleted, tokens.EventDeliveryFailed}

// Observer is told what happens to webhooks. Its methods must be safe for
// concurrent use and return at once.
type Observer interface {
	// Delivered counts a webhook the receiver answered 2xx.
	Delivered()
	// Retried counts a failed attempt that will be retried.
	Retried()
	// GivenUp counts a webhook no longer retried: its deadline passed.
	GivenUp()
}

// Deliverer POSTs the webhook outbox's events to one URL in the background,
// signed as the Standard Webhooks specification says (see Signer): at most one
// event of a user at a time and in the order they occurred, at most
// Concurrency users at once. A 2xx answer delivers the event; any other answer,
// or none within SendTimeout, is retried after an exponential backoff with
// jitter (MinBackoff doubling up to MaxBackoff), never sooner than the answer's
// Retry-After counted from when it arrived, until Deadline after the event
// occurred: then it is GIVEN_UP, logged and counted, and stays in the audit
// trail.
//
// Users are served fairly: the outbox is read one event per user (the
// oldest, when due), so one user's backlog or failing events delay only that
// user. Deliverers may share one outbox (several broker instances): before it
// serves a user, a Deliverer takes the user's claim (Store.ClaimWebhooks), and
// before each attempt it writes the event's next attempt time past the attempt
// (a compare-and-set), so each event is sent once in normal operation. Should
// a process die mid-attempt, both run out and the event is sent again, with
// the same webhook-id: delivery is at least once.
//
// It has its own HTTP client and goroutines: a slow or failing receiver holds
// up nothing but webhooks. Set its fields before Run.
type Deliverer struct {
	store  Store
	signer *Signer
	url    string

	// Client sends the webhooks; NewDeliverer gives it a transport of its
	// own, a timeout of SendTimeout, and no redirects followed (a 3xx is a
	// failed attempt).
	Client *http.Client
	// Deadline is how long after an event occurred it is retried.
	Deadline time.Duration
	// Concurrency bounds the users served at once; zero or less means one.
	Concurrency int
	// PollInterval is how often the outbox is looked at when Wake is not
	// called; it must be positive.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff shape the wait between attempts (see
	// retry.Backoff).
	MinBackoff, MaxBackoff time.Duration
	// IndexLag is how far behind its writes the store's listing of pending
	// webhooks may be (DynamoDB's index; zero for a store that reads its own
	// writes). A user's oldest pending webhook is sent only once IndexLag has
	// passed since it was first listed, so that one of an event just before
	// it, not listed yet, is not overtaken (see package settle). Set it
	// before Run.
	IndexLag time.Duration
	// Now returns the current time; tests set it.
	Now func() time.Time
	// Logger receives outcomes; never a secret or the URL.
	Logger *slog.Logger
	// Observer is told outcomes; nil observes nothing.
	Observer Observer

	owner string // this deliverer's name in claims
	wake  chan struct{}
	mu    sync.Mutex
	busy  map[string]bool // users being served
	users settle.Queues   // the users' oldest webhooks, held back for IndexLag
}

// NewDeliverer returns a Deliverer of store's webhooks to url, signed with
// secret. It returns an EINVALID error, naming neither, when url is not an
// http(s) URL or secret is not a webhook secret (ErrBadSecret): the URL never
// receives a request unsigned.
func NewDeliverer(store Store, url string, secret tokens.Secret) (*Deliverer, error) {
	signer, err := NewSigner(secret)
	if err != nil {
		return nil, tokens.Errorf(tokens.EINVALID, "webhook secret %v", err)
	}
	if req, err := http.NewRequest(http.MethodPost, url, nil); err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "webhook URL is not an http(s) URL")
	}
	return &Deliverer{
		store: store, signer: signer, url: url,
		Client:   newClient(),
		Deadline: DefaultDeadline, Concurrency: DefaultConcurrency,
		PollInterval: time.Second, MinBackoff: time.Second, MaxBackoff: 10 * time.Minute,
		Now: time.Now, Logger: slog.New(slog.DiscardHandler),
		owner: uuid.NewString(), wake: make(chan struct{}, 1), busy: map[string]bool{},
	}, nil
}

// newClient returns the webhooks' own HTTP client.
func newClient() *http.Client {
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          DefaultConcurrency * 2,
		MaxIdleConnsPerHost:   DefaultConcurrency * 2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       SendTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Wake makes Run look at the outbox at once; it never blocks.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the attempts in flight, each
// bounded by SendTimeout, to be answered and their outcomes stored. Run it
// once per Deliverer.
func (d *Deliverer) Run(ctx context.Context) {
	sem := make(chan struct{}, max(1, d.Concurrency))
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTicker(d.PollInterval)
	defer poll.Stop()
	d.users.Lag = d.IndexLag
	for {
		due, err := d.store.DueWebhooks(ctx, d.Now(), tokens.MaxPageSize)
		if err != nil && ctx.Err() == nil {
			d.Logger.WarnContext(ctx, "reading the webhook outbox failed", "err", err.Error())
		}
		for _, w := range due {
			user := w.Event.UserID
			if d.users.Left(user, d.Now()) > 0 || !d.take(user) {
				continue // its oldest is settling (a timer wakes the loop), or it is being served
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				d.give(user)
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				more := d.serveUser(ctx, w)
				// Give the user up before waking the loop, or it would find the
				// user still busy and leave the next event to the next poll.
				d.give(user)
				if wait := d.users.Left(user, d.Now()); wait > 0 {
					time.AfterFunc(wait, d.Wake) // look again once its oldest has settled
				}
				if more {
					d.Wake() // look again: the user may have more due
				}
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-poll.C:
		}
	}
}

// take marks user as served by this process; false when it is already.
func (d *Deliverer) take(user string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[user] {
		return false
	}
	d.busy[user] = true
	return true
}

func (d *Deliverer) give(user string) {
	d.mu.Lock()
	delete(d.busy, user)
	d.mu.Unlock()
}

// serveUser takes w's user's claim, makes one attempt at w under it and gives
// the claim back. It reports whether it stored an outcome; false when another
// deliverer holds the claim or wrote w first.
func (d *Deliverer) serveUser(ctx context.Context, w *Webhook) bool {
	user := w.Event.UserID
	now := d.Now()
	if d.users.Wait(user, []string{w.Event.ID}, now) > 0 {
		return false // Run is woken when it has settled
	}
	held, err := d.store.ClaimWebhooks(ctx, user, d.owner, now, now.Add(claimTTL))
	if err != nil {
		if ctx.Err() == nil {
			d.Logger.WarnContext(ctx, "claiming a user's webhooks failed", "user_id", user, "err", err.Error())
		}
		return false
	}
	if !held {
		return false // another deliverer serves the user
	}
	defer func() {
		// Give the claim back even when ctx has ended (shutdown), so that
		// another instance need not wait for it to run out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := d.store.ReleaseWebhooks(rctx, user, d.owner); err != nil {
			d.Logger.WarnContext(ctx, "releasing a user's webhooks failed", "user_id", user, "err", err.Error())
		}
	}()
	return d.deliver(ctx, w)
}

// deliver makes one attempt at w, or gives it up when its deadline has
// passed, and stores the outcome; it reports whether it did.
func (d *Deliverer) deliver(ctx context.Context, w *Webhook) bool {
	now := d.Now()
	deadline := w.Event.OccurredAt.Add(d.Deadline)
	if !now.Before(deadline) {
		return d.giveUp(ctx, w, "deadline passed before an attempt")
	}
	// Hold the webhook for the length of one attempt: the write checks that
	// it is still pending as read (DueWebhooks may be stale, or another
	// instance may have sent it since), and it is not due while it is sent.
	w.NextAttemptAt = now.Add(claimTTL)
	if !d.put(ctx, w) {
		return false
	}
	// Once sent, an attempt runs to its answer (or SendTimeout) and its
	// outcome is stored even when shutdown begins meanwhile: the receiver may
	// act on it, and cutting it short would send it again from the next
	// process. Run waits for it. The outcome's write has releaseTimeout, so
	// that a store that stopped answering cannot hold shutdown up.
	sent := context.WithoutCancel(ctx)
	answeredAt, retryAfter, err := d.post(sent, w)
	ctx, cancel := context.WithTimeout(sent, releaseTimeout)
	defer cancel()
	w.Attempts++
	if err == nil {
		w.State, w.LastError = StateDelivered, ""
		if !d.put(ctx, w) {
			return false
		}
		d.observer().Delivered()
		d.Logger.InfoContext(ctx, "webhook delivered", "event_id", w.Event.ID, "type", string(w.Event.Type), "user_id", w.Event.UserID, "attempts", w.Attempts)
		return true
	}
	w.LastError = err.Error()
	from := answeredAt
	if from.IsZero() {
		from = d.Now()
	}
	w.NextAttemptAt = from.Add(max(retryAfter, retry.Backoff(w.Attempts, d.MinBackoff, d.MaxBackoff)))
	if !w.NextAttemptAt.Before(deadline) {
		return d.giveUp(ctx, w, "deadline passes before the next attempt")
	}
	if !d.put(ctx, w) {
		return false
	}
	d.observer().Retried()
	d.Logger.InfoContext(ctx, "webhook will be retried", "event_id", w.Event.ID, "user_id", w.Event.UserID,
		"attempts", w.Attempts, "next_attempt_at", w.NextAttemptAt, "err", w.LastError)
	return true
}

// post sends w once. It returns when the answer arrived (zero when none did),
// the wait its Retry-After asks for, and nil for a 2xx answer.
func (d *Deliverer) post(ctx context.Context, w *Webhook) (answeredAt time.Time, retryAfter time.Duration, err error) {
	body, err := MarshalEvent(w.Event)
	if err != nil {
		return time.Time{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, SendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return time.Time{}, 0, errors.New("webhook URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "reciprocal-broker-webhooks")
	d.signer.Sign(req.Header, w.Event.ID, d.Now(), body)
	resp, err := d.Client.Do(req)
	if err != nil {
		return time.Time{}, 0, describe(ctx, err)
	}
	answeredAt = d.Now()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return answeredAt, 0, nil
	}
	retryAfter = retryafter.Parse(resp.Header.Get("Retry-After"), answeredAt, d.Deadline)
	return answeredAt, retryAfter, fmt.Errorf("the receiver answered %d", resp.StatusCode)
}

// describe says why no answer came, without the URL (which may hold
// credentials).
func describe(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Errorf("no answer within %s", SendTimeout)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Errorf("no answer: %s %v", oe.Op, oe.Err)
	}
	return errors.New("no answer: the connection failed")
}

// giveUp stores w GIVEN_UP; it reports whether the write succeeded.
func (d *Deliverer) giveUp(ctx context.Context, w *Webhook, why string) bool {
	w.State = StateGivenUp
	if w.LastError != "" {
		why += "; last error: " + w.LastError
	}
	w.LastError = why
	if !d.put(ctx, w) {
		return false
	}
	d.observer().GivenUp()
	d.Logger.WarnContext(ctx, "webhook given up", "event_id", w.Event.ID, "type", string(w.Event.Type), "user_id", w.Event.UserID,
		"attempts", w.Attempts, "reason", why)
	return true
}

// put stores w; a conflict means another deliverer wrote it first, and this
// one's outcome yields; a missing webhook was removed with its event.
func (d *Deliverer) put(ctx context.Context, w *Webhook) bool {
	if err := d.store.PutWebhook(ctx, w); err != nil {
		if !errors.Is(err, ErrVersionConflict) && !errors.Is(err, ErrWebhookNotFound) && ctx.Err() == nil {
			d.Logger.WarnContext(ctx, "writing a webhook failed", "event_id", w.Event.ID, "err", err.Error())
		}
		return false
	}
	return true
}

func (d *Deliverer) observer() Observer {
	if d.Observer == nil {
		return nopObserver{}
	}
	return d.Observer
}

type nopObserver struct{}

func (nopObserver) Delivered() {}
func (nopObserver) Retried()   {}
func (nopObserver) GivenUp()   {}
