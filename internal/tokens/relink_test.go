package tokens_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestService_RequireRelink(t *testing.T) {
	t.Run("Linked", func(t *testing.T) {
		h := newHarness(t)
		linked, _ := h.mustLink(t, "alice")
		if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
			t.Fatalf("RequireRelink error = %v", err)
		}
		l := h.stored(t, "alice")
		if l.Version <= linked.Version {
			t.Errorf("Version = %d, want > %d", l.Version, linked.Version)
		}
		want := copyLink(linked)
		want.State, want.Version = tokens.StateRelinkRequired, l.Version
		if diff := cmp.Diff(want, l); diff != "" {
			t.Errorf("stored link (-want +got): only the state may change:\n%s", diff)
		}

		// No LWA call is made for alice, even once her token expires.
		h.clock.Advance(ttl)
		_, err := h.token(t.Context(), "alice")
		assertCode(t, err, tokens.ERELINK)
		_, err = h.refresh(t.Context(), "alice")
		assertCode(t, err, tokens.ERELINK)
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
	})

	t.Run("AlreadyRelink", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
			t.Fatalf("first RequireRelink error = %v", err)
		}
		marked := h.stored(t, "alice")
		if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
			t.Fatalf("second RequireRelink error = %v", err)
		}
		if diff := cmp.Diff(marked, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link changed by a second RequireRelink (-before +after):\n%s", diff)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		h := newHarness(t)
		err := h.svc.RequireRelink(t.Context(), "nobody")
		if !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("RequireRelink error = %v, want ErrLinkNotFound", err)
		}
		assertCode(t, err, tokens.ENOTFOUND)
	})

	t.Run("VersionRace", func(t *testing.T) {
		// Another writer changes the link between RequireRelink's read and its
		// write: the write conflicts, and RequireRelink marks the new version.
		h := newHarness(t)
		h.mustLink(t, "alice")
		h.store.beforeNextPut(func() {
			l := h.stored(t, "alice")
			l.Region = "FE"
			if err := h.store.PutLink(t.Context(), l); err != nil {
				t.Errorf("racing PutLink error = %v", err)
			}
		})
		if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
			t.Fatalf("RequireRelink error = %v", err)
		}
		l := h.stored(t, "alice")
		if got, want := l.State, tokens.StateRelinkRequired; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
		if got, want := l.Region, "FE"; got != want {
			t.Errorf("Region = %q, want the racing writer's %q", got, want)
		}
	})

	t.Run("KeepsChanging", func(t *testing.T) {
		// Another writer wins every time: RequireRelink gives up with
		// EUNAVAILABLE, and the link is as the last writer left it.
		h := newHarness(t)
		h.mustLink(t, "alice")
		var race func()
		race = func() {
			l := h.stored(t, "alice")
			l.LastRefreshedAt = l.LastRefreshedAt.Add(time.Second)
			if err := h.store.PutLink(t.Context(), l); err != nil {
				t.Errorf("racing PutLink error = %v", err)
			}
			h.store.beforeNextPut(race)
		}
		h.store.beforeNextPut(race)
		err := h.svc.RequireRelink(t.Context(), "alice")
		h.store.beforeNextPut(nil)
		assertCode(t, err, tokens.EUNAVAILABLE)
		if got, want := h.stored(t, "alice").State, tokens.StateLinked; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
	})

	t.Run("ThenLinkAgain", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
			t.Fatalf("RequireRelink error = %v", err)
		}
		_, grant := h.mustLink(t, "alice")
		if got, want := h.mustToken(t, "alice").AccessToken, grant.AccessToken; got != want {
			t.Errorf("Token after linking again = %s, want the new grant's", got.Reveal())
		}
	})

	t.Run("StopsBackgroundRefresh", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := newBubbleHarness(t)
			h.mustLink(t, "alice")
			h.mustToken(t, "alice")
			if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
				t.Fatalf("RequireRelink error = %v", err)
			}
			background(t, h.svc, 2*time.Hour, time.Minute)
			time.Sleep(2 * ttl)
			synctest.Wait()
			assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
		})
	})
}
