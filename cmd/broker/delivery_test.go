package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestDynamo_TwoDeliverers_UserOrder: two deliverers, each with its own
// store client, share one table. The first is sending report A of a user
// (Alexa is slow to answer it) when the user's newer report B is submitted
// through the second. Alexa must receive A and then B, never A after B: the
// second deliverer waits for the user's delivery claim.
func TestDynamo_TwoDeliverers_UserOrder(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	sender := newOrderSender()
	var services []*reports.Service
	for range 2 {
		store, err := dynamo.New(t.Context(), dynamo.Options{Table: table, Client: dynamotest.Client(endpoint), CreateTable: true})
		if err != nil {
			t.Fatal(err)
		}
		svc := reports.NewService(store, linkedTokens{})
		d := reports.NewDeliverer(svc, sender)
		d.PollInterval = 20 * time.Millisecond
		runDeliverer(t, d)
		services = append(services, svc)
	}
	release := sender.hold("A")
	profiles := storetest.NewReport("x", "parent", time.Now()).Profiles

	if _, err := services[0].Submit(t.Context(), "", "parent", "A", profiles); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "A being sent", func() bool { return sender.started("A") })
	if _, err := services[1].Submit(t.Context(), "", "parent", "B", profiles); err != nil {
		t.Fatal(err)
	}
	// The second deliverer polls every 20 ms: give it a second to send B too
	// early, as it did before deliveries were claimed per user.
	waitFor(t, time.Second, "", func() bool { return sender.started("B") })
	close(release)

	for _, id := range []string{"A", "B"} {
		waitFor(t, 10*time.Second, id+" DELIVERED", func() bool {
			r, err := services[1].Report(t.Context(), id)
			return err == nil && r.State == reports.StateDelivered
		})
	}
	if got := sender.arrived(); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("Alexa received %v, want [A B]: an older report reached Alexa after a newer one", got)
	}
}

// runDeliverer runs d until the test ends.
func runDeliverer(tb testing.TB, d *reports.Deliverer) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
}

// waitFor polls cond every 5 ms until it holds or within passes; then it
// fails the test with what, unless what is "" (a wait for something that
// should not happen).
func waitFor(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			if what != "" {
				tb.Fatalf("no %s within %v", what, within)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linkedTokens is a reports.Tokens for which every user is linked, with a
// token that never changes.
type linkedTokens struct{}

var _ reports.Tokens = linkedTokens{}

func (linkedTokens) Link(_ context.Context, skillID, userID string) (*tokens.Link, error) {
	return &tokens.Link{UserID: userID, SkillID: skillID, State: tokens.StateLinked}, nil
}

func (linkedTokens) Token(context.Context, string, string) (tokens.Token, error) {
	return tokens.Token{AccessToken: "Atza|token"}, nil
}

func (t linkedTokens) Refresh(ctx context.Context, skillID, userID string) (*tokens.Link, error) {
	return t.Link(ctx, skillID, userID)
}

func (linkedTokens) RequireRelink(context.Context, string, string) error { return nil }

// orderSender is a reports.Sender standing for the Alexa API: it accepts every
// report, holds the sends of the message ids given to hold until their gate is
// closed, and records the order in which reports arrive (their sends end).
type orderSender struct {
	mu      sync.Mutex
	gates   map[string]chan struct{}
	begun   map[string]bool
	arrival []string
}

func newOrderSender() *orderSender {
	return &orderSender{gates: map[string]chan struct{}{}, begun: map[string]bool{}}
}

// hold makes sends of messageID wait until the returned gate is closed.
func (s *orderSender) hold(messageID string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := make(chan struct{})
	s.gates[messageID] = g
	return g
}

func (s *orderSender) Send(ctx context.Context, _ string, _ tokens.Secret, r *reports.Report) error {
	s.mu.Lock()
	s.begun[r.MessageID] = true
	gate := s.gates[r.MessageID]
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return &reports.RetryError{Reason: "time-out"}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arrival = append(s.arrival, r.MessageID)
	return nil
}

// started reports whether a send of messageID has begun.
func (s *orderSender) started(messageID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.begun[messageID]
}

// arrived returns the message ids in the order they reached the API.
func (s *orderSender) arrived() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrival)
}
