package reports

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/retry"
	"github.com/reciprocal-broker/broker/internal/settle"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Defaults of a Deliverer.
const (
	// DefaultDeadline is the default of Deliverer.Deadline.
	DefaultDeadline = 24 * time.Hour
	// DefaultRetention is the default of Deliverer.Retention.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultConcurrency is the default of Deliverer.Concurrency.
	DefaultConcurrency = 8
	// sendTimeout bounds one call to the Alexa Health API.
	sendTimeout = 15 * time.Second
	// claimTTL is how long an attempt holds its report: two sends (the second
	// after a token refresh) and the refresh itself, or after a 403 the mark
	// of the link (relinkBudget).
	claimTTL = 3*sendTimeout + 30*time.Second
	// sweepInterval is how often Run removes finished reports.
	sweepInterval = time.Hour
	// releaseTimeout bounds the write that gives a user's delivery claim
	// back, also when Run's context has ended.
	releaseTimeout = 5 * time.Second
)

// Deliverer sends pending reports to the Alexa Health API in the background:
// at most one report of a user at a time and at most Concurrency users at once;
// the user's newest report first (each report is the user's whole profile set,
// so once the newest is delivered the older ones are SUPERSEDED, never sent); a
// failure that may pass is retried after an exponential backoff with jitter,
// never sooner than Retry-After, until Deadline.
//
// Users are served fairly: the outbox is read one report per user (the
// newest, when due), so a user's backlog or failures delay only that user.
// Deliverers may share one outbox (several broker instances): before it
// serves a user, a Deliverer takes the user's delivery claim in the store
// (Store.ClaimDelivery), so one user's reports are sent by one deliverer at a
// time, and a report older than one already delivered (the user's delivered
// mark) is superseded, never sent. Before each attempt it also claims the
// report itself, so that the report is not due again while it is being sent.
// Set its fields before Run.
type Deliverer struct {
	service *Service
	sender  Sender

	// Deadline is how long after submission a report is retried before FAILED.
	Deadline time.Duration
	// Retention is how long finished reports are kept: Run removes them once
	// an hour.
	Retention time.Duration
	// Concurrency bounds the users served at once; zero or less means one.
	Concurrency int
	// PollInterval is how often the outbox is looked at when nothing wakes the
	// deliverer; it must be positive.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff shape the wait between attempts: it doubles
	// from MinBackoff up to MaxBackoff, then ±50 % jitter spreads it.
	MinBackoff, MaxBackoff time.Duration
	// IndexLag is how far behind its writes the store's outbox listing may be
	// (DynamoDB's index; zero for a store that reads its own writes). A
	// lane's oldest report, of a kind sent in order, is sent only once
	// IndexLag has passed since it was first listed, so that a report
	// accepted just before it, not listed yet, is not overtaken (see package
	// settle). Set it before Run.
	IndexLag time.Duration

	lanes settle.Queues // the ordered lanes, their heads held back for IndexLag

	owner string // this deliverer's name in delivery claims
	wake  chan struct{}
	mu    sync.Mutex
	busy  map[string]bool // users being served
}

// NewDeliverer returns a Deliverer of s's reports through sender. Reports that
// s accepts wake it at once.
func NewDeliverer(s *Service, sender Sender) *Deliverer {
	d := &Deliverer{
		service: s, sender: sender,
		Deadline: DefaultDeadline, Retention: DefaultRetention, Concurrency: DefaultConcurrency,
		PollInterval: time.Second, MinBackoff: time.Second, MaxBackoff: 10 * time.Minute,
		owner: uuid.NewString(), wake: make(chan struct{}, 1), busy: map[string]bool{},
	}
	s.wake = d.wake
	return d
}

// Run delivers until ctx ends, then waits for sends in flight to finish. It
// looks at the outbox every PollInterval and whenever Submit stores a report,
// and removes the reports finished more than Retention ago once an hour. Run
// it once per Deliverer.
func (d *Deliverer) Run(ctx context.Context) {
	sem := make(chan struct{}, max(1, d.Concurrency))
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTicker(d.PollInterval)
	defer poll.Stop()
	d.lanes.Lag = d.IndexLag
	lastSweep := time.Time{}
	for {
		now := d.service.Now()
		if now.Sub(lastSweep) > sweepInterval {
			lastSweep = now
			if n, err := d.service.store.DeleteFinishedReports(ctx, now.Add(-d.Retention)); err != nil {
				d.service.Logger.WarnContext(ctx, "removing finished reports failed", "err", err.Error())
			} else if n > 0 {
				d.service.Logger.InfoContext(ctx, "removed finished reports", "count", n)
			}
		}
		due, err := d.service.store.DueReports(ctx, now, tokens.MaxPageSize)
		if err != nil && ctx.Err() == nil {
			d.service.Logger.WarnContext(ctx, "reading the outbox failed", "err", err.Error())
		}
		for _, r := range due {
			lane := r.Lane()
			if d.lanes.Left(lane, time.Now()) > 0 || !d.claim(lane) {
				continue // its head is settling (a timer wakes the loop), or it is being served
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				d.release(lane)
				return
			}
			wg.Add(1)
			go func(r *Report) {
				defer wg.Done()
				defer func() { <-sem }()
				more := d.serveLane(ctx, r)
				// Release the lane before waking the loop, or it would find the
				// lane still busy and leave the next report to the next poll.
				d.release(r.Lane())
				if wait := d.lanes.Left(r.Lane(), time.Now()); wait > 0 {
					time.AfterFunc(wait, d.wakeUp) // look again once its head has settled
				}
				if !more {
					return // nothing was due: wait for the next poll or wake
				}
				d.wakeUp() // look again: the user may have more due
			}(r)
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-poll.C:
		}
	}
}

// wakeUp makes Run look at the outbox at once; it never blocks.
func (d *Deliverer) wakeUp() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Deliverer) claim(lane string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[lane] {
		return false
	}
	d.busy[lane] = true
	return true
}

func (d *Deliverer) release(lane string) {
	d.mu.Lock()
	delete(d.busy, lane)
	d.mu.Unlock()
}

// serveLane takes the delivery claim of due's lane for one attempt, delivers
// under it and gives it back. It reports whether it stored an outcome; false
// when another deliverer holds the claim.
func (d *Deliverer) serveLane(ctx context.Context, due *Report) bool {
	s := d.service
	lane := due.Lane()
	now := s.Now()
	mark, held, err := s.store.ClaimDelivery(ctx, lane, d.owner, now, now.Add(claimTTL))
	if err != nil {
		if ctx.Err() == nil {
			s.Logger.WarnContext(ctx, "claiming a lane's delivery failed", "user_id", due.UserID, "skill_id", due.SkillID, "kind", string(due.Kind), "err", err.Error())
		}
		return false
	}
	if !held {
		return false // another deliverer serves the lane
	}
	defer func() {
		// Give the claim back even when ctx has ended (shutdown), so that
		// another instance need not wait for it to run out.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if err := s.store.ReleaseDelivery(rctx, lane, d.owner); err != nil {
			s.Logger.WarnContext(ctx, "releasing a lane's delivery failed", "user_id", due.UserID, "skill_id", due.SkillID, "err", err.Error())
		}
	}()
	return d.deliverLane(ctx, due, mark)
}

// deliverLane makes one attempt at the lane's next report: for a kind that
// supersedes, the newest pending one, and once it is delivered the older
// ones are superseded (reports older than the lane's delivered mark are
// superseded without an attempt); for any other kind, the oldest pending one.
// It reports whether it stored an outcome.
func (d *Deliverer) deliverLane(ctx context.Context, due *Report, mark int64) bool {
	s := d.service
	user, supersedes := due.UserID, due.Kind.Supersedes()
	pending, err := s.store.LanePendingReports(ctx, due.Lane())
	if err != nil {
		return false
	}
	// A report older than one delivered already must not reach Alexa after
	// it: it is moot. (Its supersession was not stored, or is not visible
	// yet, when the deliverer that delivered the newer one stopped.)
	stored := false
	for supersedes && len(pending) > 0 && pending[0].Seq < mark {
		if d.finish(ctx, pending[0], StateSuperseded, "a newer report of the user was delivered") {
			s.observer().Superseded(KindProfileReport)
			stored = true
		}
		pending = pending[1:]
	}
	if len(pending) == 0 {
		return stored
	}
	r, older := pending[0], []*Report(nil)
	if supersedes {
		r, older = pending[len(pending)-1], pending[:len(pending)-1]
	}
	now := s.Now()
	if r.NextAttemptAt.After(now) {
		return stored
	}
	if now.Sub(r.SubmittedAt) > d.Deadline {
		d.finish(ctx, r, StateFailed, "delivery deadline passed; last error: "+r.LastError)
		for _, old := range older {
			d.finish(ctx, old, StateFailed, "delivery deadline passed; last error: "+old.LastError)
		}
		return true
	}
	if !supersedes {
		// Real time, as the index's lag is.
		ids := make([]string, len(pending))
		for i, p := range pending {
			ids[i] = p.MessageID
		}
		if d.lanes.Wait(r.Lane(), ids, time.Now()) > 0 {
			return stored // Run is woken when it has settled
		}
	}
	// Claim the report for the length of one attempt: the write checks that
	// the report is still pending as read (the outbox's index may lag), and
	// the report is not due while it is being sent, so that DueReports leaves
	// its user out. Should this process die mid-send, this claim and the
	// user's run out, and the report is sent again.
	r.NextAttemptAt = now.Add(claimTTL)
	if !d.put(ctx, r) {
		return false
	}
	err = d.attempt(ctx, r)
	r.Attempts++
	var retry *RetryError
	var missingKey *tokens.KeyMissingError
	switch {
	case err == nil:
		// Storing r as DELIVERED raises the user's delivered mark: should
		// this process stop before the older reports are superseded, the
		// next deliverer of the user supersedes them and sends none.
		r.DeliveredAt = s.Now()
		if d.finish(ctx, r, StateDelivered, "") {
			s.observer().Delivered(r.DeliveryKind(), r.DeliveredAt.Sub(r.SubmittedAt))
			for _, old := range older {
				if d.finish(ctx, old, StateSuperseded, "a newer report of the user was delivered") {
					s.observer().Superseded(KindProfileReport)
				}
			}
		}
	case errors.Is(err, ErrPermissionWithdrawn):
		d.requireRelink(ctx, r.SkillID, user)
		d.finish(ctx, r, StateFailed, ErrPermissionWithdrawn.Message)
	case errors.As(err, &retry) || tokens.ErrorCode(err) == tokens.EUNAVAILABLE || errors.Is(err, ErrTokenRejected) ||
		errors.As(err, &missingKey):
		// A link sealed under a key that is not configured waits, as for an
		// outage, until the deadline: the operator may configure the key again.
		var after time.Duration
		if retry != nil {
			after = retry.After
		}
		r.LastError = tokens.ErrorMessage(err)
		if retry != nil {
			r.LastError = retry.Error()
		}
		r.NextAttemptAt = s.Now().Add(max(after, d.backoff(r.Attempts)))
		if d.put(ctx, r) {
			s.observer().Retried(r.DeliveryKind())
			s.Logger.InfoContext(ctx, "report delivery will be retried", "message_id", r.MessageID, "user_id", user,
				"attempts", r.Attempts, "next_attempt_at", r.NextAttemptAt, "err", r.LastError)
		}
	default: // refused for good: invalid report, link gone or needing re-linking
		d.finish(ctx, r, StateFailed, tokens.ErrorMessage(err))
	}
	return true
}

// requireRelink marks the user's link RELINK_REQUIRED after Alexa's 403.
// The report is not sent again, whatever happens here; so while the store is
// unavailable the mark is retried, with backoff, for up to relinkBudget
// (within the report's claim), and only then given up and logged.
func (d *Deliverer) requireRelink(ctx context.Context, skillID, user string) {
	s := d.service
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := s.tokens.RequireRelink(ctx, skillID, user)
		switch tokens.ErrorCode(err) {
		case "", tokens.ENOTFOUND: // marked, or no link to mark
			return struct{}{}, nil
		case tokens.EUNAVAILABLE:
			return struct{}{}, err
		}
		return struct{}{}, backoff.Permanent(err)
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(relinkBudget))
	if err != nil {
		s.Logger.ErrorContext(ctx, "marking the link RELINK_REQUIRED after Alexa's 403 failed", "user_id", user, "err", err.Error())
	}
}

// relinkBudget bounds how long requireRelink retries the mark.
const relinkBudget = 20 * time.Second

// attempt sends r once with the user's token; on 401 it refreshes the token and
// sends once more.
func (d *Deliverer) attempt(ctx context.Context, r *Report) error {
	s := d.service
	link, err := s.tokens.Link(ctx, r.SkillID, r.UserID)
	if err != nil {
		return err
	}
	tok, err := s.tokens.Token(ctx, r.SkillID, r.UserID)
	if err != nil {
		return err
	}
	err = d.send(ctx, link.Region, tok.AccessToken, r)
	if !errors.Is(err, ErrTokenRejected) {
		return err
	}
	if _, err := s.tokens.Refresh(ctx, r.SkillID, r.UserID); err != nil {
		return err
	}
	if tok, err = s.tokens.Token(ctx, r.SkillID, r.UserID); err != nil {
		return err
	}
	return d.send(ctx, link.Region, tok.AccessToken, r)
}

func (d *Deliverer) send(ctx context.Context, region string, token tokens.Secret, r *Report) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	return d.sender.Send(ctx, region, token, r)
}

// backoff returns the wait after a report's attempts-th failed attempt (see
// retry.Backoff).
func (d *Deliverer) backoff(attempts int) time.Duration {
	return retry.Backoff(attempts, d.MinBackoff, d.MaxBackoff)
}

// finish moves r to an end state; it reports whether the write succeeded. A
// report DELIVERED or FAILED is stored with its delivery.delivered or
// delivery.failed event; a SUPERSEDED one records none.
func (d *Deliverer) finish(ctx context.Context, r *Report, state State, reason string) bool {
	s := d.service
	r.State, r.FinishedAt = state, s.Now()
	if reason != "" {
		r.LastError = reason
	}
	var events []tokens.Event
	switch state {
	case StateDelivered:
		events = append(events, r.event(tokens.EventDelivered, map[string]any{"message_id": r.MessageID, "kind": string(r.DeliveryKind())}))
	case StateFailed:
		events = append(events, r.event(tokens.EventDeliveryFailed,
			map[string]any{"message_id": r.MessageID, "kind": string(r.DeliveryKind()), "last_error": r.LastError}))
	}
	s.Notify.Mark(events)
	if !d.put(ctx, r, events...) {
		return false
	}
	tokens.ObserveStored(s.EventObserver, events...)
	switch state {
	case StateFailed:
		s.observer().Failed(r.DeliveryKind())
		s.Logger.WarnContext(ctx, "report failed", "message_id", r.MessageID, "user_id", r.UserID, "attempts", r.Attempts, "reason", reason)
	case StateDelivered:
		s.Logger.InfoContext(ctx, "report delivered", "message_id", r.MessageID, "user_id", r.UserID, "attempts", r.Attempts)
	}
	return true
}

// put stores r with events; a conflict means another deliverer (another
// instance) wrote it first, and this one's outcome yields.
func (d *Deliverer) put(ctx context.Context, r *Report, events ...tokens.Event) bool {
	if err := d.service.store.PutReport(ctx, r, events...); err != nil {
		if !errors.Is(err, ErrVersionConflict) && ctx.Err() == nil {
			d.service.Logger.WarnContext(ctx, "writing a report failed", "message_id", r.MessageID, "err", fmt.Sprint(err))
		}
		return false
	}
	return true
}

// DeliveryKind returns r's Kind, the empty one (a report stored before kinds
// existed, or a profile report stored as such) read as KindProfileReport.
func (r *Report) DeliveryKind() Kind {
	if r.Kind == "" {
		return KindProfileReport
	}
	return r.Kind
}

// event returns a new event of typ about r's delivery, made when r finished.
func (r *Report) event(typ tokens.EventType, data map[string]any) tokens.Event {
	e := tokens.NewEvent(typ, r.UserID, tokens.ActorBroker, r.FinishedAt, data)
	if r.SkillID != "" {
		e.SkillID = r.SkillID
	}
	return e
}
