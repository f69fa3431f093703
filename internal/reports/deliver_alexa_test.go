package reports_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// alexaEvent returns the message of a ChangeReport with messageID, as the
// partner submits it: no scope, no token.
func alexaEvent(messageID string) []byte {
	return []byte(`{"event":{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"` + messageID +
		`","payloadVersion":"3"},"endpoint":{"endpointId":"thermostat-1"},"payload":{"change":{"cause":{"type":"PHYSICAL_INTERACTION"},"properties":[]}}},"context":{"properties":[]}}`)
}

// submitEvent submits the ChangeReport messageID of user in the default
// skill.
func (h *deliverHarness) submitEvent(tb testing.TB, user, messageID string) *reports.Report {
	tb.Helper()
	r, err := h.svc.SubmitAlexaEvent(tb.Context(), "", user, alexaEvent(messageID))
	if err != nil {
		tb.Fatalf("SubmitAlexaEvent(%s, %s) error = %v", user, messageID, err)
	}
	return r
}

func TestService_SubmitAlexaEvent(t *testing.T) {
	t.Run("Stored", func(t *testing.T) {
		h := newDeliverHarness(t)
		r := h.submitEvent(t, "u1", "e-1")
		got := h.report(t, "e-1")
		if got.Kind != reports.KindAlexaEvent || got.State != reports.StatePending || got.UserID != "u1" || string(got.Message) != string(alexaEvent("e-1")) {
			t.Errorf("stored %+v, want a PENDING Alexa event of u1 with the message as submitted", got)
		}
		if r.MessageID != "e-1" {
			t.Errorf("MessageID = %q, want the event's messageId e-1", r.MessageID)
		}
	})

	t.Run("Again", func(t *testing.T) {
		h := newDeliverHarness(t)
		h.submitEvent(t, "u1", "e-1")
		again := h.submitEvent(t, "u1", "e-1")
		if again.State != reports.StatePending || h.store.creates.Load() != 1 {
			t.Errorf("second submission: state %v, %d creates; want the stored event, one create", again.State, h.store.creates.Load())
		}
	})

	t.Run("Refused", func(t *testing.T) {
		h := newDeliverHarness(t)
		for name, tc := range map[string]struct {
			user    string
			message []byte
			code    tokens.Code
			field   string
		}{
			"ScopeSet": {"u1", []byte(`{"event":{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"e-2","payloadVersion":"3"},"endpoint":{"endpointId":"t","scope":{"type":"BearerToken","token":"x"}},"payload":{}}}`),
				tokens.EINVALID, "event.endpoint.scope"},
			"PayloadVersion": {"u1", []byte(`{"event":{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"e-3","payloadVersion":"2"},"endpoint":{"endpointId":"t"},"payload":{}}}`),
				tokens.EINVALID, "event.header.payloadVersion"},
			"NotLinked":       {"nobody", alexaEvent("e-4"), tokens.ENOTFOUND, ""},
			"UsedByReport":    {"u1", alexaEvent("m-1"), tokens.EINVALID, "event.header.messageId"},
			"UsedByOtherUser": {"u2", alexaEvent("e-1"), tokens.EINVALID, "event.header.messageId"},
			"OtherSkill":      {"u1", alexaEvent("e-5"), tokens.ENOTFOUND, ""},
		} {
			t.Run(name, func(t *testing.T) {
				h.submit(t, "u1", "m-1")
				_, _ = h.svc.SubmitAlexaEvent(t.Context(), "", "u1", alexaEvent("e-1"))
				skill := ""
				if name == "OtherSkill" {
					skill = "home" // u1 is linked in the default skill only
				}
				_, err := h.svc.SubmitAlexaEvent(t.Context(), skill, tc.user, tc.message)
				if got := tokens.ErrorCode(err); got != tc.code {
					t.Fatalf("SubmitAlexaEvent error = %v (%s), want %s", err, got, tc.code)
				}
				if !strings.Contains(tokens.ErrorMessage(err), tc.field) {
					t.Errorf("error %q does not name %s", tokens.ErrorMessage(err), tc.field)
				}
			})
		}
	})
}

func TestDeliverer_AlexaEvents(t *testing.T) {
	t.Run("InOrderNeverSuperseded", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			for i := range 5 {
				h.submitEvent(t, "u1", fmt.Sprint("e-", i))
			}
			h.start(t)
			synctest.Wait()
			if diff := cmp.Diff([]string{"e-0", "e-1", "e-2", "e-3", "e-4"}, h.sender.messageIDs()); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
			for i := range 5 {
				assertState(t, h.report(t, fmt.Sprint("e-", i)), reports.StateDelivered)
			}
			if got := h.obs.get().Superseded; got != 0 {
				t.Errorf("Superseded = %d, want 0", got)
			}
		})
	})

	t.Run("RetryKeepsOrder", func(t *testing.T) {
		// The oldest event waits for its retry; the newer ones wait behind it.
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(script(errThrottled))
			h.submitEvent(t, "u1", "e-0")
			h.submitEvent(t, "u1", "e-1")
			h.start(t)
			synctest.Wait()
			if diff := cmp.Diff([]string{"e-0"}, h.sender.messageIDs()); diff != "" {
				t.Fatalf("sent before the retry (-want +got):\n%s", diff)
			}
			advance(errThrottled.After)
			if diff := cmp.Diff([]string{"e-0", "e-0", "e-1"}, h.sender.messageIDs()); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	})

	t.Run("ApartFromReports", func(t *testing.T) {
		// A user's profile reports and Alexa events are lanes of their own:
		// a failing event does not hold a report back.
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(func(_ int, r *reports.Report) error {
				if r.Kind == reports.KindAlexaEvent {
					return errServer
				}
				return nil
			})
			h.submitEvent(t, "u1", "e-0")
			h.submit(t, "u1", "m-0")
			h.start(t)
			synctest.Wait()
			assertState(t, h.report(t, "m-0"), reports.StateDelivered)
			assertState(t, h.report(t, "e-0"), reports.StatePending)
		})
	})

	t.Run("Forbidden", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(always(errWithdrawn))
			h.submitEvent(t, "u1", "e-0")
			h.start(t)
			synctest.Wait()
			assertState(t, h.report(t, "e-0"), reports.StateFailed)
			if got := h.tokens.state("u1"); got != tokens.StateRelinkRequired {
				t.Errorf("link state = %v, want RELINK_REQUIRED", got)
			}
		})
	})

	t.Run("TokenRejectedOnce", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(script(errRejected))
			h.submitEvent(t, "u1", "e-0")
			h.start(t)
			synctest.Wait()
			r := h.report(t, "e-0")
			assertState(t, r, reports.StateDelivered)
			if got := h.tokens.refreshCalls.Load(); got != 1 {
				t.Errorf("refreshes = %d, want 1", got)
			}
			if s := h.sender.sends(); len(s) != 2 || s[0].Token == s[1].Token {
				t.Errorf("sends = %+v, want two, the second with the refreshed token", s)
			}
		})
	})

	t.Run("RefusedAtOnce", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.sender.setRespond(always(tokens.Errorf(tokens.EINVALID, "Alexa Event Gateway answered 400 INVALID_REQUEST_EXCEPTION")))
			h.submitEvent(t, "u1", "e-0")
			h.submitEvent(t, "u1", "e-1")
			h.start(t)
			synctest.Wait()
			for _, id := range []string{"e-0", "e-1"} {
				r := h.report(t, id)
				assertState(t, r, reports.StateFailed)
				assertAttempts(t, r, 1)
			}
		})
	})

	t.Run("Deadline", func(t *testing.T) {
		inBubble(t, func(t *testing.T, h *deliverHarness) {
			h.d.Deadline = time.Hour
			h.sender.setRespond(always(errServer))
			h.submitEvent(t, "u1", "e-0")
			h.start(t)
			synctest.Wait()
			advance(2 * time.Hour)
			assertState(t, h.report(t, "e-0"), reports.StateFailed)
		})
	})
}

// laggingStore lists the outbox as an eventually consistent index does: a
// report in hidden is left out of every listing until its time comes, while
// reads by message id see it at once.
type laggingStore struct {
	*memReports
	hidden map[string]time.Time // message id → when listings show it
}

// listed returns the reports of rs that the index shows now.
func (l *laggingStore) listed(rs []*reports.Report) []*reports.Report {
	return slices.DeleteFunc(rs, func(r *reports.Report) bool { return time.Now().Before(l.hidden[r.MessageID]) })
}

// DueReports answers as the index shows the outbox: a lane whose oldest
// report is hidden stands for its oldest listed one.
func (l *laggingStore) DueReports(ctx context.Context, now time.Time, limit int) ([]*reports.Report, error) {
	due, err := l.memReports.DueReports(ctx, now, limit)
	if err != nil {
		return nil, err
	}
	var out []*reports.Report
	for _, r := range due {
		if !time.Now().Before(l.hidden[r.MessageID]) {
			out = append(out, r)
			continue
		}
		pending, err := l.LanePendingReports(ctx, r.Lane())
		if err != nil {
			return nil, err
		}
		if len(pending) > 0 && !pending[0].NextAttemptAt.After(now) {
			out = append(out, pending[0])
		}
	}
	return out, nil
}

// LanePendingReports leaves out the hidden reports.
func (l *laggingStore) LanePendingReports(ctx context.Context, lane string) ([]*reports.Report, error) {
	rs, err := l.memReports.LanePendingReports(ctx, lane)
	return l.listed(rs), err
}

// TestDeliverer_IndexLag: an Alexa event accepted just before another, not
// yet listed by a lagging index when the deliverer looks, is still sent
// first when IndexLag covers the lag; without it, it is overtaken.
func TestDeliverer_IndexLag(t *testing.T) {
	for _, tt := range []struct {
		name     string
		indexLag time.Duration
		want     []string
	}{
		{"Overtaken", 0, []string{"e-2", "e-1"}},
		{"HeldBack", time.Second, []string{"e-1", "e-2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T, h *deliverHarness) {
				h.submitEvent(t, "u1", "e-1")
				h.submitEvent(t, "u1", "e-2")
				start := time.Now()
				lagging := &laggingStore{memReports: h.store, hidden: map[string]time.Time{"e-1": start.Add(500 * time.Millisecond)}}
				_, d := newDeliverer(lagging, h.tokens, h.sender, h.obs)
				d.IndexLag = tt.indexLag
				// Polls far apart: a wake that does not come costs seconds.
				d.PollInterval = 2 * time.Second
				run(t, t.Context(), d)
				advance(5 * time.Second)
				if got := h.sender.messageIDs(); !slices.Equal(got, tt.want) {
					t.Fatalf("sent %v, want %v", got, tt.want)
				}
				sends := h.sender.sends()
				// With IndexLag, e-2 was listed first and e-1 waits from its
				// own listing, 2·IndexLag in all; e-2 has settled by then and
				// follows at once. Without, e-1 is found by the next poll.
				if end, within := sends[1].At.Sub(start), 2500*time.Millisecond; end > within {
					t.Errorf("the second sent %v after submission, want within %v", end, within)
				}
			})
		})
	}
}
