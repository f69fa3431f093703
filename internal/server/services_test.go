package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/server"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// deadlineLog records the deadline of each call of a fake.
type deadlineLog struct {
	mu        sync.Mutex
	deadlines []time.Time // the zero time for a call without one
}

// record notes ctx's deadline.
func (l *deadlineLog) record(ctx context.Context) {
	dl, _ := ctx.Deadline()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deadlines = append(l.deadlines, dl)
}

// seen returns the deadlines recorded so far.
func (l *deadlineLog) seen() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.deadlines...)
}

// deadlineAuthn is a hand-written auth.Authenticator that takes every token
// as user-1's of client alexa and records the deadline of each call.
type deadlineAuthn struct{ deadlineLog }

var _ auth.Authenticator = (*deadlineAuthn)(nil)

func (a *deadlineAuthn) Verify(ctx context.Context, _ string) (auth.Principal, error) {
	a.record(ctx)
	return auth.Principal{Subject: "user-1", ClientID: "alexa"}, nil
}

// deadlineExchanger is a hand-written reciprocal.Exchanger that links every
// user and records the deadline of each call.
type deadlineExchanger struct{ deadlineLog }

var _ reciprocal.Exchanger = (*deadlineExchanger)(nil)

func (x *deadlineExchanger) Exchange(ctx context.Context, userID string, _ tokens.Secret, region string) (*tokens.Link, error) {
	x.record(ctx)
	return &tokens.Link{UserID: userID, State: tokens.StateLinked, Region: region}, nil
}

// TestReciprocalService_Deadline checks that a hand-over over gRPC has
// reciprocal.Deadline from before its token is verified: the verification
// and the exchange share one deadline, whatever deadline the caller set, and
// a caller's sooner deadline is kept.
func TestReciprocalService_Deadline(t *testing.T) {
	authn, exch := &deadlineAuthn{}, &deadlineExchanger{}
	svc := reciprocal.NewService(reciprocal.Skill{ID: "default", ClientIDs: []string{"alexa"}, Tokens: exch})
	s := open(t, server.Options{
		Authenticator: authn,
		Services:      server.Services{Reciprocal: server.NewReciprocalService(svc, nil)},
	})
	client := brokerv1.NewReciprocalServiceClient(dial(t, s))

	for _, tt := range []struct {
		name           string
		callerDeadline time.Duration // 0: none
		want           time.Duration // the time the call has
	}{
		{name: "NoCallerDeadline", want: reciprocal.Deadline},
		{name: "LaterCallerDeadline", callerDeadline: time.Minute, want: reciprocal.Deadline},
		{name: "SoonerCallerDeadline", callerDeadline: 2 * time.Second, want: 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer user-1")
			if tt.callerDeadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.callerDeadline)
				defer cancel()
			}
			verifiedBefore, exchangedBefore := len(authn.seen()), len(exch.seen())
			begin := time.Now()
			_, err := client.Authorize(ctx, &brokerv1.AuthorizeRequest{
				GrantType: reciprocal.GrantType, Code: "ANcode", ClientId: "alexa",
			})
			end := time.Now()
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			verified, exchanged := authn.seen()[verifiedBefore:], exch.seen()[exchangedBefore:]
			if len(verified) != 1 || len(exchanged) != 1 {
				t.Fatalf("verified %d and exchanged %d times, want once each", len(verified), len(exchanged))
			}
			// The server's clock starts between begin and end.
			switch dl := verified[0]; {
			case dl.IsZero():
				t.Errorf("the token was verified without a deadline, want one %v after the call began", tt.want)
			case dl.Before(begin.Add(tt.want-time.Second)) || dl.After(end.Add(tt.want)):
				t.Errorf("the token was verified with a deadline %v after the call began, want about %v", dl.Sub(begin), tt.want)
			}
			if !exchanged[0].Equal(verified[0]) {
				t.Errorf("the code was exchanged with deadline %v, want the verification's %v", exchanged[0], verified[0])
			}
		})
	}
}
