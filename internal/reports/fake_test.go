package reports_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// memReports is an in-memory reports.Store: a map behind a mutex, deep copies
// in and out, a store-wide counter for Seq and Version, delivery claims and
// marks per user, and EUNAVAILABLE once the caller's context has ended.
// TestMemReports runs the outbox conformance suite against it, so the tests
// here rely only on what every store does.
type memReports struct {
	// creates counts reports created; pendingReads counts DueReports calls.
	creates, pendingReads atomic.Int64
	// onPendingRead, when set before use, is called with the count after each
	// DueReports call.
	onPendingRead func(n int64)

	mu      sync.Mutex
	reports map[string]*reports.Report
	counter int64
	claims  map[string]memClaim // lane → delivery claim and mark

	// MemEvents keeps the events of the changes and their webhooks.
	storetest.MemEvents
}

// memClaim is a lane's delivery claim (owner "" when released) and mark.
type memClaim struct {
	owner     string
	until     time.Time
	delivered int64
}

var (
	_ reports.Store     = (*memReports)(nil)
	_ reports.Counter   = (*memReports)(nil)
	_ tokens.EventStore = (*memReports)(nil)
)

func newMemReports() *memReports {
	return &memReports{reports: map[string]*reports.Report{}, claims: map[string]memClaim{}}
}

// copyReport returns a deep copy of r.
func copyReport(r *reports.Report) *reports.Report {
	c := *r
	c.Message = slices.Clone(r.Message)
	c.Profiles = slices.Clone(r.Profiles)
	for i, p := range c.Profiles {
		c.Profiles[i].Name.NickNames = slices.Clone(p.Name.NickNames)
		c.Profiles[i].Capabilities = slices.Clone(p.Capabilities)
		for j, cp := range c.Profiles[i].Capabilities {
			c.Profiles[i].Capabilities[j].SupportedOperations = slices.Clone(cp.SupportedOperations)
		}
	}
	return &c
}

// unavailable returns the store's answer to a context that has ended.
func unavailable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return tokens.Errorf(tokens.EUNAVAILABLE, "memreports: %v", err)
	}
	return nil
}

func (s *memReports) CreateReport(ctx context.Context, r *reports.Report) (*reports.Report, bool, error) {
	if err := unavailable(ctx); err != nil {
		return nil, false, err
	}
	if err := r.CheckStorable(); err != nil {
		return nil, false, fmt.Errorf("memreports: create: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.reports[r.MessageID]; ok {
		return copyReport(cur), false, nil
	}
	s.counter++
	r.Seq, r.Version = s.counter, s.counter
	s.reports[r.MessageID] = copyReport(r)
	s.creates.Add(1)
	return r, true, nil
}

func (s *memReports) GetReport(ctx context.Context, messageID string) (*reports.Report, error) {
	if err := unavailable(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reports[messageID]
	if !ok {
		return nil, fmt.Errorf("memreports: get %q: %w", messageID, reports.ErrReportNotFound)
	}
	return copyReport(r), nil
}

func (s *memReports) PutReport(ctx context.Context, r *reports.Report, events ...tokens.Event) error {
	if err := unavailable(ctx); err != nil {
		return err
	}
	if err := r.CheckStorable(); err != nil {
		return fmt.Errorf("memreports: put: %w", err)
	}
	if err := tokens.ValidateEvents(events); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.reports[r.MessageID]
	switch {
	case !ok:
		return fmt.Errorf("memreports: put %q: %w", r.MessageID, reports.ErrReportNotFound)
	case cur.Version != r.Version:
		return fmt.Errorf("memreports: put %q version %d over %d: %w", r.MessageID, r.Version, cur.Version, reports.ErrVersionConflict)
	}
	s.counter++
	c := copyReport(r)
	c.Version = s.counter
	s.reports[r.MessageID] = c
	r.Version = s.counter
	if r.State == reports.StateDelivered {
		m := s.claims[r.Lane()]
		m.delivered = max(m.delivered, r.Seq)
		s.claims[r.Lane()] = m
	}
	s.Add(events)
	return nil
}

func (s *memReports) CountReports(ctx context.Context) (map[reports.State]int, error) {
	if err := unavailable(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[reports.State]int{}
	for _, r := range s.reports {
		counts[r.State]++
	}
	return counts, nil
}

func (s *memReports) DueReports(ctx context.Context, now time.Time, limit int) ([]*reports.Report, error) {
	n := s.pendingReads.Add(1)
	if s.onPendingRead != nil {
		defer s.onPendingRead(n)
	}
	if err := unavailable(ctx); err != nil {
		return nil, err
	}
	limit = tokens.PageSize(limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	// The lane's newest pending report when its kind supersedes, else its
	// oldest.
	next := map[string]*reports.Report{}
	for _, r := range s.reports {
		if r.State != reports.StatePending {
			continue
		}
		cur := next[r.Lane()]
		if cur == nil || (r.Kind.Supersedes() && r.Seq > cur.Seq) || (!r.Kind.Supersedes() && r.Seq < cur.Seq) {
			next[r.Lane()] = r
		}
	}
	// By lane, as the bbolt store walks its index.
	var due []*reports.Report
	for _, lane := range slices.Sorted(maps.Keys(next)) {
		if len(due) >= limit {
			break
		}
		if r := next[lane]; !r.NextAttemptAt.After(now) {
			due = append(due, copyReport(r))
		}
	}
	return due, nil
}

func (s *memReports) LanePendingReports(ctx context.Context, lane string) ([]*reports.Report, error) {
	if err := unavailable(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*reports.Report
	for _, r := range s.reports {
		if r.Lane() == lane && r.State == reports.StatePending {
			out = append(out, copyReport(r))
		}
	}
	slices.SortFunc(out, func(a, b *reports.Report) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

func (s *memReports) DeleteFinishedReports(ctx context.Context, before time.Time) (int, error) {
	if err := unavailable(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.reports {
		if r.State.Final() && r.FinishedAt.Before(before) {
			delete(s.reports, id)
			n++
		}
	}
	return n, nil
}

func (s *memReports) ClaimDelivery(ctx context.Context, lane, owner string, now, until time.Time) (int64, bool, error) {
	if err := unavailable(ctx); err != nil {
		return 0, false, err
	}
	if err := reports.CheckDeliveryClaim(lane, owner); err != nil {
		return 0, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.claims[lane]
	if c.owner != "" && c.owner != owner && !c.until.Before(now) {
		return 0, false, nil
	}
	c.owner, c.until = owner, until
	s.claims[lane] = c
	return c.delivered, true, nil
}

func (s *memReports) ReleaseDelivery(ctx context.Context, lane, owner string) error {
	if err := unavailable(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[lane]; ok && owner != "" && c.owner == owner {
		c.owner, c.until = "", time.Time{}
		s.claims[lane] = c
	}
	return nil
}

func TestMemReports(t *testing.T) {
	storetest.RunReports(t, func(t *testing.T) reports.Store { return newMemReports() })
	storetest.RunReportEvents(t, func(t *testing.T) storetest.ReportEventStore { return newMemReports() })
	storetest.RunReportCounts(t, func(t *testing.T) storetest.ReportCountStore { return newMemReports() })
}

// len returns how many reports the store holds.
func (s *memReports) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reports)
}

// fakeTokens is a reports.Tokens over a map of links: each linked user has an
// access token, which Refresh replaces with a new one. A user whose link is
// RELINK_REQUIRED gets an ERELINK error from Token and Refresh. Tests can make
// every call of a method fail (the *Err fields, set under mu via setErr) and
// count the calls.
type fakeTokens struct {
	// tokenCalls, refreshCalls and relinkCalls count calls, failed ones included.
	tokenCalls, refreshCalls, relinkCalls atomic.Int64

	mu       sync.Mutex
	links    map[string]*tokens.Link
	token    map[string]string // user → current access token
	seq      int
	linkErr  error
	tokenErr error
	refrErr  error
	// relinkErrs are the errors of the next RequireRelink calls, in turn,
	// before the link is marked.
	relinkErrs []error
}

var _ reports.Tokens = (*fakeTokens)(nil)

var errRelink = tokens.Errorf(tokens.ERELINK, "the user must link the skill again")

func newFakeTokens() *fakeTokens {
	return &fakeTokens{links: map[string]*tokens.Link{}, token: map[string]string{}}
}

// link links userID in region with a first access token.
func (f *fakeTokens) link(userID, region string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[userID] = &tokens.Link{UserID: userID, State: tokens.StateLinked, Region: region}
	f.seq++
	f.token[userID] = fmt.Sprintf("Atza|%s-%d", userID, f.seq)
}

// unlink removes userID's link, as DeleteLink does.
func (f *fakeTokens) unlink(userID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.links, userID)
	delete(f.token, userID)
}

// accessToken returns userID's current access token.
func (f *fakeTokens) accessToken(userID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.token[userID]
}

// state returns the state of userID's link, or 0 when there is none.
func (f *fakeTokens) state(userID string) tokens.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.links[userID]; ok {
		return l.State
	}
	return 0
}

// failRelinks makes the next RequireRelink calls return errs, one each.
func (f *fakeTokens) failRelinks(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.relinkErrs = errs
}

// setErrs makes every Link, Token and Refresh call fail with the errors given
// (nil: behave) until called again.
func (f *fakeTokens) setErrs(link, token, refresh error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.linkErr, f.tokenErr, f.refrErr = link, token, refresh
}

// get returns userID's link; f.mu is held.
func (f *fakeTokens) get(userID string) (*tokens.Link, error) {
	l, ok := f.links[userID]
	if !ok {
		return nil, fmt.Errorf("fake tokens: %w", tokens.ErrLinkNotFound)
	}
	c := *l
	return &c, nil
}

// userKey names userID's link in skillID: the user id alone in the default
// skill, so that the helpers above keep to the default skill.
func userKey(skillID, userID string) string { return tokens.SealSubject(skillID, userID) }

func (f *fakeTokens) Link(_ context.Context, skillID, userID string) (*tokens.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.linkErr != nil {
		return nil, f.linkErr
	}
	return f.get(userKey(skillID, userID))
}

func (f *fakeTokens) Token(_ context.Context, skillID, userID string) (tokens.Token, error) {
	userID = userKey(skillID, userID)
	f.tokenCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokenErr != nil {
		return tokens.Token{}, f.tokenErr
	}
	l, err := f.get(userID)
	if err != nil {
		return tokens.Token{}, err
	}
	if l.State == tokens.StateRelinkRequired {
		return tokens.Token{}, errRelink
	}
	return tokens.Token{AccessToken: tokens.Secret(f.token[userID])}, nil
}

func (f *fakeTokens) Refresh(_ context.Context, skillID, userID string) (*tokens.Link, error) {
	userID = userKey(skillID, userID)
	f.refreshCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refrErr != nil {
		return nil, f.refrErr
	}
	l, err := f.get(userID)
	if err != nil {
		return nil, err
	}
	if l.State == tokens.StateRelinkRequired {
		return nil, errRelink
	}
	f.seq++
	f.token[userID] = fmt.Sprintf("Atza|%s-%d", userID, f.seq)
	return l, nil
}

func (f *fakeTokens) RequireRelink(_ context.Context, skillID, userID string) error {
	userID = userKey(skillID, userID)
	f.relinkCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.relinkErrs) > 0 {
		err := f.relinkErrs[0]
		f.relinkErrs = f.relinkErrs[1:]
		return err
	}
	l, ok := f.links[userID]
	if !ok {
		return fmt.Errorf("fake tokens: %w", tokens.ErrLinkNotFound)
	}
	l.State = tokens.StateRelinkRequired
	return nil
}

// sent is one call of fakeSender.Send.
type sent struct {
	At        time.Time
	Region    string
	Token     string
	MessageID string
	UserID    string
}

// fakeSender is a reports.Sender whose answers are scripted per call: respond
// gets the 1-based number of the call and the report, and returns what Send
// returns (nil respond: every call succeeds). It records every call in order,
// counts the sends in flight, per user and in all, and, when gate is set, holds
// each send until the gate yields a value or is closed (or the send's context
// ends, which answers a *RetryError as a time-out does).
type fakeSender struct {
	mu       sync.Mutex
	respond  func(n int, r *reports.Report) error
	gate     chan struct{}
	calls    []sent
	inFlight map[string]int
	maxUser  int // most sends of one user in flight at once
	total    int
	maxTotal int // most sends in flight at once
}

var _ reports.Sender = (*fakeSender)(nil)

func newFakeSender() *fakeSender {
	return &fakeSender{inFlight: map[string]int{}}
}

// script returns a respond func answering errs in turn, then nil.
func script(errs ...error) func(int, *reports.Report) error {
	return func(n int, _ *reports.Report) error {
		if n <= len(errs) {
			return errs[n-1]
		}
		return nil
	}
}

// always returns a respond func answering err to every call.
func always(err error) func(int, *reports.Report) error {
	return func(int, *reports.Report) error { return err }
}

// setRespond replaces the script.
func (f *fakeSender) setRespond(respond func(int, *reports.Report) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.respond = respond
}

// block makes sends wait for the returned gate; close it to let all through.
func (f *fakeSender) block() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan struct{})
	return f.gate
}

func (f *fakeSender) Send(ctx context.Context, region string, accessToken tokens.Secret, r *reports.Report) error {
	f.mu.Lock()
	f.calls = append(f.calls, sent{At: time.Now(), Region: region, Token: accessToken.Reveal(), MessageID: r.MessageID, UserID: r.UserID})
	n, respond, gate := len(f.calls), f.respond, f.gate
	f.inFlight[r.UserID]++
	f.total++
	f.maxUser = max(f.maxUser, f.inFlight[r.UserID])
	f.maxTotal = max(f.maxTotal, f.total)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[r.UserID]--
		f.total--
		f.mu.Unlock()
	}()

	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return &reports.RetryError{Reason: "time-out"}
		}
	}
	if respond == nil {
		return nil
	}
	return respond(n, r)
}

// sends returns the calls so far, in order.
func (f *fakeSender) sends() []sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// messageIDs returns the message ids sent so far, in order.
func (f *fakeSender) messageIDs() []string {
	var ids []string
	for _, s := range f.sends() {
		ids = append(ids, s.MessageID)
	}
	return ids
}

// flight returns the sends in flight now, per user and in all, and the most
// ever seen of each.
func (f *fakeSender) flight() (perUser map[string]int, total, maxUser, maxTotal int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	perUser = map[string]int{}
	for u, n := range f.inFlight {
		if n > 0 {
			perUser[u] = n
		}
	}
	return perUser, f.total, f.maxUser, f.maxTotal
}

// fakeObserver is a reports.Observer that counts what it is told.
type fakeObserver struct {
	mu         sync.Mutex
	counts     observed
	deliveries []time.Duration
}

var _ reports.Observer = (*fakeObserver)(nil)

// observed is what a fakeObserver counted.
type observed struct {
	Accepted, Delivered, Failed, Retried, Superseded int
}

// The fake counts every kind together: kinds are told apart in the tests of
// Alexa events by what the sender received.
func (o *fakeObserver) Accepted(reports.Kind) { o.add(func(c *observed) { c.Accepted++ }) }
func (o *fakeObserver) Failed(reports.Kind)   { o.add(func(c *observed) { c.Failed++ }) }
func (o *fakeObserver) Retried(reports.Kind)  { o.add(func(c *observed) { c.Retried++ }) }
func (o *fakeObserver) Superseded(reports.Kind) {
	o.add(func(c *observed) { c.Superseded++ })
}

func (o *fakeObserver) Delivered(_ reports.Kind, d time.Duration) {
	o.add(func(c *observed) {
		c.Delivered++
		o.deliveries = append(o.deliveries, d)
	})
}

func (o *fakeObserver) add(f func(*observed)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(&o.counts)
}

// get returns the counts so far.
func (o *fakeObserver) get() observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts
}

// delivered returns the durations Delivered was told of, in order.
func (o *fakeObserver) delivered() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.deliveries)
}
