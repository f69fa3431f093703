package tokens_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// storedEvents returns the events the store holds, oldest first.
func (s *memStore) storedEvents() []tokens.Event {
	return s.Events()
}

// eventsSince returns the events stored after the first n.
func (h *harness) eventsSince(n int) []tokens.Event {
	return h.store.storedEvents()[n:]
}

// mark returns how many events the store holds, for eventsSince.
func (h *harness) mark() int { return len(h.store.storedEvents()) }

// countingObserver counts the events it is told of, by type.
type countingObserver struct {
	mu     sync.Mutex
	counts map[tokens.EventType]int
}

var _ tokens.EventObserver = (*countingObserver)(nil)

func (o *countingObserver) EventStored(t tokens.EventType, _ string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[tokens.EventType]int{}
	}
	o.counts[t]++
}

// assertEvents checks got against want, comparing what a test can know: the
// type, user, actor, skill, data and notify mark; every event must also have
// an id and the time of the clock.
func assertEvents(tb testing.TB, got, want []tokens.Event, at time.Time) {
	tb.Helper()
	for _, e := range got {
		if err := e.Validate(); err != nil {
			tb.Errorf("event %+v: %v", e, err)
		}
		if !at.IsZero() && !e.OccurredAt.Equal(at) {
			tb.Errorf("event %s occurred at %v, want %v", e.Type, e.OccurredAt, at)
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(tokens.Event{}, "ID", "OccurredAt"), cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("events (-want +got):\n%s", diff)
	}
}

// ev is an expected event of the default skill.
func ev(typ tokens.EventType, user, actor string, data map[string]any) tokens.Event {
	return tokens.Event{Type: typ, UserID: user, SkillID: tokens.DefaultSkillID, Actor: actor, Data: data}
}

func TestService_Events(t *testing.T) {
	t.Run("Linked", func(t *testing.T) {
		h := newHarness(t)
		code := h.lwa.newCode("alice")
		if _, err := h.exchange(t.Context(), "alice", code); err != nil {
			t.Fatal(err)
		}
		assertEvents(t, h.eventsSince(0), []tokens.Event{
			ev(tokens.EventLinked, "alice", tokens.ActorAlexa, map[string]any{"region": "EU", "relinked": false}),
		}, h.clock.Now())

		n := h.mark()
		if _, err := h.exchange(t.Context(), "alice", code); err != nil {
			t.Fatalf("Alexa's retry: %v", err)
		}
		assertEvents(t, h.eventsSince(n), nil, time.Time{}) // an Alexa retry records nothing

		h.clock.Advance(time.Minute)
		h.mustLink(t, "alice")
		assertEvents(t, h.eventsSince(n), []tokens.Event{
			ev(tokens.EventLinked, "alice", tokens.ActorAlexa, map[string]any{"region": "EU", "relinked": true}),
		}, h.clock.Now())
	})

	t.Run("LinkedDefaultRegion", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.svc.Exchange(t.Context(), "alice", h.lwa.newCode("alice"), ""); err != nil {
			t.Fatal(err)
		}
		assertEvents(t, h.eventsSince(0), []tokens.Event{
			ev(tokens.EventLinked, "alice", tokens.ActorAlexa, map[string]any{"region": "", "relinked": false}),
		}, h.clock.Now())
	})

	refreshed := func(trigger, actor string, l *tokens.Link) tokens.Event {
		return ev(tokens.EventRefreshed, "alice", actor, map[string]any{
			"trigger": trigger, "access_token_expires_at": l.AccessTokenExpiresAt.UTC().Format(time.RFC3339Nano),
		})
	}

	t.Run("RefreshedByCaller", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		n := h.mark()
		h.mustToken(t, "alice") // fresh: no refresh
		assertEvents(t, h.eventsSince(n), nil, time.Time{})
		h.clock.Advance(ttl)
		h.mustToken(t, "alice")
		assertEvents(t, h.eventsSince(n), []tokens.Event{refreshed("caller", tokens.ActorBroker, h.stored(t, "alice"))}, h.clock.Now())

		n = h.mark()
		if _, err := h.refresh(t.Context(), "alice"); err != nil {
			t.Fatal(err)
		}
		assertEvents(t, h.eventsSince(n), []tokens.Event{refreshed("caller", tokens.ActorBroker, h.stored(t, "alice"))}, h.clock.Now())
	})

	t.Run("RefreshedByOperator", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		n := h.mark()
		h.clock.Advance(time.Minute)
		l, err := h.svc.RefreshByOperator(t.Context(), "alice", "ops-console")
		if err != nil {
			t.Fatal(err)
		}
		got := h.eventsSince(n)
		assertEvents(t, got, []tokens.Event{refreshed("operator", "ops-console", l)}, h.clock.Now())
		if s := got[0].Data["access_token_expires_at"].(string); s != l.AccessTokenExpiresAt.UTC().Format(time.RFC3339Nano) {
			t.Errorf("access_token_expires_at = %q", s)
		}

		_, err = h.svc.RefreshByOperator(t.Context(), "alice", "")
		assertCode(t, err, tokens.EINVALID)
	})

	t.Run("RefreshedInBackground", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "alice")
			h.mustToken(t, "alice")
			n := h.mark()
			stop := background(t, h.svc, 2*time.Hour, time.Minute)
			time.Sleep(ttl)
			synctest.Wait()
			stop()
			got := h.eventsSince(n)
			if len(got) == 0 {
				t.Fatal("no event of background refreshes")
			}
			for _, e := range got {
				if e.Type != tokens.EventRefreshed || e.Actor != tokens.ActorBroker || e.Data["trigger"] != "background" {
					t.Errorf("event %+v, want link.refreshed by broker, trigger background", e)
				}
			}
		})
	})

	t.Run("RelinkRequiredInvalidGrant", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		h.lwa.revoke("alice")
		h.clock.Advance(ttl)
		n := h.mark()
		_, err := h.token(t.Context(), "alice")
		assertCode(t, err, tokens.ERELINK)
		_, err = h.token(t.Context(), "alice")
		assertCode(t, err, tokens.ERELINK)
		assertEvents(t, h.eventsSince(n), []tokens.Event{
			ev(tokens.EventRelinkRequired, "alice", tokens.ActorBroker, map[string]any{"reason": "invalid_grant"}),
		}, h.clock.Now())
	})

	t.Run("RelinkRequiredAlexaForbidden", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		n := h.mark()
		for range 2 { // the second finds it marked, and records nothing
			if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
				t.Fatal(err)
			}
		}
		assertEvents(t, h.eventsSince(n), []tokens.Event{
			ev(tokens.EventRelinkRequired, "alice", tokens.ActorBroker, map[string]any{"reason": "alexa_forbidden"}),
		}, h.clock.Now())
	})

	t.Run("Deleted", func(t *testing.T) {
		for _, tc := range []struct {
			name, reason, want string
		}{
			{"DefaultReason", "", "operator"},
			{"SkillDisabled", "skill_disabled", "skill_disabled"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t)
				h.mustLink(t, "alice")
				n := h.mark()
				if err := h.svc.Delete(t.Context(), "alice", tokens.Deletion{Actor: "skill-backend", Reason: tc.reason}); err != nil {
					t.Fatal(err)
				}
				assertEvents(t, h.eventsSince(n), []tokens.Event{
					ev(tokens.EventDeleted, "alice", "skill-backend", map[string]any{"reason": tc.want}),
				}, h.clock.Now())
			})
		}

		t.Run("NoActor", func(t *testing.T) {
			h := newHarness(t)
			h.mustLink(t, "alice")
			assertCode(t, h.svc.Delete(t.Context(), "alice", tokens.Deletion{}), tokens.EINVALID)
			h.stored(t, "alice")
		})

		t.Run("NotFound", func(t *testing.T) {
			h := newHarness(t)
			assertCode(t, h.svc.Delete(t.Context(), "nobody", tokens.Deletion{Actor: "ops"}), tokens.ENOTFOUND)
			assertEvents(t, h.eventsSince(0), nil, time.Time{})
		})
	})

	t.Run("NoneForReseal", func(t *testing.T) {
		k := newKeys(t)
		store := newMemStore()
		putSealed(t, store, "old", k.a)
		r := tokens.NewResealer(store, mustRing(t, k.b, k.a))
		r.Limit = &countingWaiter{}
		if _, err := r.Pass(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := store.storedEvents(); len(got) != 0 {
			t.Errorf("events of a reseal = %+v, want none", got)
		}
	})

	t.Run("NotifyAndObserve", func(t *testing.T) {
		h := newHarness(t)
		obs := &countingObserver{}
		h.svc.Notify = tokens.NewNotifySet([]tokens.EventType{tokens.EventLinked, tokens.EventDeleted})
		h.svc.EventObserver = obs
		h.mustLink(t, "alice")
		h.clock.Advance(ttl)
		h.mustToken(t, "alice")
		if err := h.svc.Delete(t.Context(), "alice", tokens.Deletion{Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
		var notified []tokens.EventType
		for _, e := range h.eventsSince(0) {
			if e.Notify {
				notified = append(notified, e.Type)
			}
		}
		if diff := cmp.Diff([]tokens.EventType{tokens.EventLinked, tokens.EventDeleted}, notified); diff != "" {
			t.Errorf("notified events (-want +got):\n%s", diff)
		}
		want := map[tokens.EventType]int{tokens.EventLinked: 1, tokens.EventRefreshed: 1, tokens.EventDeleted: 1}
		if diff := cmp.Diff(want, obs.counts); diff != "" {
			t.Errorf("observed events (-want +got):\n%s", diff)
		}
	})

	t.Run("NotifyNothingByDefault", func(t *testing.T) {
		h := newHarness(t)
		h.svc.EventObserver = &countingObserver{} // no notify set
		h.mustLink(t, "alice")
		for _, e := range h.eventsSince(0) {
			if e.Notify {
				t.Errorf("event %s notifies without a filter", e.Type)
			}
		}
	})
}
