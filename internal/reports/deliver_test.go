package reports_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The tests of this file follow one report through one attempt, by the answer
// it gets. deliver_retry_test.go follows the waits between attempts,
// deliver_order_test.go the order of a user's reports and the users served at
// once, deliver_outbox_test.go the outbox shared across time and processes.

func TestDeliverer_Delivered(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.start(t)
		synctest.Wait()
		h.submit(t, "u1", "m1")
		synctest.Wait() // the submission wakes the deliverer: no time passes

		r := h.report(t, "m1")
		assertState(t, r, reports.StateDelivered)
		assertAttempts(t, r, 1)
		if now := time.Now(); !r.DeliveredAt.Equal(now) || !r.FinishedAt.Equal(now) {
			t.Errorf("DeliveredAt %v, FinishedAt %v; want both %v", r.DeliveredAt, r.FinishedAt, now)
		}
		assertLastError(t, r, "")
		want := []sent{{At: time.Now(), Region: "EU", Token: h.tokens.accessToken("u1"), MessageID: "m1", UserID: "u1"}}
		if diff := cmp.Diff(want, h.sender.sends()); diff != "" {
			t.Errorf("sends differ (-want +got):\n%s", diff)
		}
		assertObserved(t, h.obs, observed{Accepted: 1, Delivered: 1})
		if diff := cmp.Diff([]time.Duration{0}, h.obs.delivered()); diff != "" {
			t.Errorf("Delivered() durations differ (-want +got):\n%s", diff)
		}
		advance(time.Minute)
		assertSent(t, h.sender, "m1")
	})
}

func TestDeliverer_TokenRejected(t *testing.T) {
	t.Run("Once", func(t *testing.T) { // the token is refreshed and the report sent again at once
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(script(errRejected))
			first := h.tokens.accessToken("u1")
			r := h.firstAttempt(t)
			assertState(t, r, reports.StateDelivered)
			assertAttempts(t, r, 1)
			assertCalls(t, "Refresh", &h.tokens.refreshCalls, 1)
			sends := h.sender.sends()
			if len(sends) != 2 {
				t.Fatalf("%d sends, want 2", len(sends))
			}
			if sends[0].Token != first || sends[1].Token != h.tokens.accessToken("u1") || sends[1].Token == first {
				t.Errorf("tokens sent %q then %q; want %q then the refreshed one", sends[0].Token, sends[1].Token, first)
			}
			assertObserved(t, h.obs, observed{Accepted: 1, Delivered: 1})
		})
	})

	t.Run("Twice", func(t *testing.T) { // the attempt fails and is retried after the backoff
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(script(errRejected, errRejected))
			r := h.firstAttempt(t)
			assertState(t, r, reports.StatePending)
			assertAttempts(t, r, 1)
			assertLastError(t, r, reports.ErrTokenRejected.Message)
			wait := time.Until(r.NextAttemptAt)
			if wait < h.d.MinBackoff/2 || wait > h.d.MinBackoff*3/2 {
				t.Errorf("next attempt in %v, want the first backoff, %v ± 50 %%", wait, h.d.MinBackoff)
			}
			assertCalls(t, "Refresh", &h.tokens.refreshCalls, 1)
			assertSent(t, h.sender, "m1", "m1")
			assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1})

			advance(wait - time.Millisecond)
			assertSent(t, h.sender, "m1", "m1")
			advance(h.d.PollInterval)
			assertSent(t, h.sender, "m1", "m1", "m1")
			r = h.report(t, "m1")
			assertState(t, r, reports.StateDelivered)
			assertAttempts(t, r, 2)
			assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1, Delivered: 1})
		})
	})
}

func TestDeliverer_PermissionWithdrawn(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.sender.setRespond(script(errWithdrawn))
		r := h.firstAttempt(t)
		assertState(t, r, reports.StateFailed)
		assertLastError(t, r, reports.ErrPermissionWithdrawn.Message)
		if r.FinishedAt.IsZero() || !r.DeliveredAt.IsZero() {
			t.Errorf("FinishedAt %v, DeliveredAt %v; want finished, not delivered", r.FinishedAt, r.DeliveredAt)
		}
		assertCalls(t, "RequireRelink", &h.tokens.relinkCalls, 1)
		if got, want := h.tokens.state("u1"), tokens.StateRelinkRequired; got != want {
			t.Errorf("link state = %v, want %v", got, want)
		}
		advance(time.Hour)
		assertSent(t, h.sender, "m1")
		assertObserved(t, h.obs, observed{Accepted: 1, Failed: 1})
	})
}

// TestDeliverer_PermissionWithdrawnMarkFails: after Alexa's 403 the report is
// never sent again, even while the link cannot be marked (the store
// unavailable): the mark is retried for a while, then given up.
func TestDeliverer_PermissionWithdrawnMarkFails(t *testing.T) {
	unavailable := tokens.Errorf(tokens.EUNAVAILABLE, "the store cannot be reached")
	for _, tt := range []struct {
		name      string
		fails     int // RequireRelink calls that fail before it works
		wantState tokens.State
	}{
		{"MarkedOnRetry", 2, tokens.StateRelinkRequired},
		{"GivenUp", 1000, tokens.StateLinked},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T, h *deliverHarness) {
				h.sender.setRespond(script(errWithdrawn, errWithdrawn))
				errs := make([]error, tt.fails)
				for i := range errs {
					errs[i] = unavailable
				}
				h.tokens.failRelinks(errs...)
				h.submit(t, "u1", "m1")
				h.start(t)
				advance(time.Minute)
				r := h.report(t, "m1")
				assertState(t, r, reports.StateFailed)
				assertLastError(t, r, reports.ErrPermissionWithdrawn.Message)
				if got := h.tokens.state("u1"); got != tt.wantState {
					t.Errorf("link state = %v, want %v", got, tt.wantState)
				}
				if calls := h.tokens.relinkCalls.Load(); calls < 2 || (tt.fails < 10 && calls != int64(tt.fails)+1) {
					t.Errorf("RequireRelink called %d times, want retried", calls)
				}
				advance(time.Hour)
				assertSent(t, h.sender, "m1")
				assertObserved(t, h.obs, observed{Accepted: 1, Failed: 1})
			})
		})
	}
}

// TestDeliverer_FailsForGood covers the answers that no retry can cure: the
// report fails after its first attempt and is never sent again.
func TestDeliverer_FailsForGood(t *testing.T) {
	for _, tt := range []struct {
		name string
		// arrange runs after m1 of u1 is submitted, before the deliverer starts.
		arrange       func(t *testing.T, h *deliverHarness)
		wantLastError string
		wantSent      []string
		wantRefreshes int64
	}{
		{
			name:          "Refused",
			arrange:       func(t *testing.T, h *deliverHarness) { h.sender.setRespond(script(errRefusal)) },
			wantLastError: errRefusal.Message,
			wantSent:      []string{"m1"},
		},
		{
			name:          "LinkGone",
			arrange:       func(t *testing.T, h *deliverHarness) { h.tokens.unlink("u1") },
			wantLastError: tokens.ErrLinkNotFound.Message,
		},
		{
			name: "RelinkRequired",
			arrange: func(t *testing.T, h *deliverHarness) {
				if err := h.tokens.RequireRelink(t.Context(), "", "u1"); err != nil {
					t.Fatal(err)
				}
			},
			wantLastError: errRelink.Message,
		},
		{
			name: "RefreshRefused", // Alexa refuses the token, LWA the refresh
			arrange: func(t *testing.T, h *deliverHarness) {
				h.sender.setRespond(script(errRejected))
				h.tokens.setErrs(nil, nil, errRelink)
			},
			wantLastError: errRelink.Message,
			wantSent:      []string{"m1"},
			wantRefreshes: 1,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T, h *deliverHarness) {
				h.submit(t, "u1", "m1")
				tt.arrange(t, h)
				h.start(t)
				advance(time.Hour)

				r := h.report(t, "m1")
				assertState(t, r, reports.StateFailed)
				assertLastError(t, r, tt.wantLastError)
				assertAttempts(t, r, 1)
				assertSent(t, h.sender, tt.wantSent...)
				assertCalls(t, "Refresh", &h.tokens.refreshCalls, tt.wantRefreshes)
				assertObserved(t, h.obs, observed{Accepted: 1, Failed: 1})
			})
		})
	}
}

func TestDeliverer_TokensUnavailable(t *testing.T) {
	inBubble(t, func(t *testing.T, h *deliverHarness) {
		h.tokens.setErrs(nil, errTokensDown, nil)
		r := h.firstAttempt(t)
		assertState(t, r, reports.StatePending)
		assertLastError(t, r, errTokensDown.Message)
		assertSent(t, h.sender)
		assertObserved(t, h.obs, observed{Accepted: 1, Retried: 1})

		h.tokens.setErrs(nil, nil, nil)
		advance(time.Until(r.NextAttemptAt) + h.d.PollInterval)
		assertState(t, h.report(t, "m1"), reports.StateDelivered)
		assertSent(t, h.sender, "m1")
	})
}
