package tokens_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestService_Refresh(t *testing.T) {
	t.Run("Fresh", func(t *testing.T) {
		h := newHarness(t)
		linked, old := h.mustLink(t, "alice")
		now := h.clock.Advance(10 * time.Minute)
		l, err := h.refresh(t.Context(), "alice")
		if err != nil {
			t.Fatalf("Refresh error = %v", err)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
		grant := h.lwa.lastGrant()
		if got, want := l.LastRefreshedAt, now; !got.Equal(want) {
			t.Errorf("LastRefreshedAt = %v, want %v", got, want)
		}
		if got, want := l.AccessTokenExpiresAt, now.Add(ttl); !got.Equal(want) {
			t.Errorf("AccessTokenExpiresAt = %v, want %v", got, want)
		}
		if l.Version <= linked.Version {
			t.Errorf("Version = %d, want > %d", l.Version, linked.Version)
		}
		if diff := cmp.Diff(l, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link (-returned +stored):\n%s", diff)
		}
		h.assertSealed(t, l, []tokens.Secret{grant.AccessToken, grant.RefreshToken}, old.AccessToken, old.RefreshToken)
		if got, want := h.mustToken(t, "alice").AccessToken, grant.AccessToken; got != want {
			t.Errorf("Token after Refresh = %s, want the refreshed one", got.Reveal())
		}
		assertCount(t, "LWA refreshes after Token", h.lwa.refreshes.Load(), 1)
	})

	t.Run("NotFound", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.refresh(t.Context(), "nobody"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("Refresh error = %v, want ErrLinkNotFound", err)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
	})

	t.Run("Transient", func(t *testing.T) {
		h := newHarness(t)
		linked, _ := h.mustLink(t, "alice")
		h.lwa.setRefreshErr(errTransient)
		_, err := h.refresh(t.Context(), "alice")
		assertCode(t, err, tokens.EUNAVAILABLE)
		if diff := cmp.Diff(linked, h.stored(t, "alice")); diff != "" {
			t.Errorf("stored link changed (-before +after):\n%s", diff)
		}
	})
}

func TestService_Delete(t *testing.T) {
	t.Run("Removes", func(t *testing.T) {
		h := newHarness(t)
		h.mustLink(t, "alice")
		h.mustLink(t, "bob")
		h.mustToken(t, "alice")
		if err := h.svc.Delete(t.Context(), "alice", tokens.Deletion{Actor: "ops"}); err != nil {
			t.Fatalf("Delete error = %v", err)
		}
		if _, err := h.svc.Link(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("Link after Delete: error = %v, want ErrLinkNotFound", err)
		}
		if _, err := h.token(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("Token after Delete: error = %v, want ErrLinkNotFound", err)
		}
		if _, err := h.svc.Link(t.Context(), "bob"); err != nil {
			t.Errorf("Link(bob) after deleting alice: error = %v", err)
		}
		assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 0)
	})

	t.Run("NotFound", func(t *testing.T) {
		h := newHarness(t)
		if err := h.svc.Delete(t.Context(), "nobody", tokens.Deletion{Actor: "ops"}); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("Delete error = %v, want ErrLinkNotFound", err)
		}
	})
}

func TestService_Links(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{"carol", "alice", "bob"} {
		h.mustLink(t, u)
	}
	var ids []string
	cursor := ""
	for range 5 {
		page, err := h.svc.Links(t.Context(), tokens.LinkFilter{}, cursor, 2)
		if err != nil {
			t.Fatalf("Links(%q) error = %v", cursor, err)
		}
		for _, l := range page.Links {
			ids = append(ids, l.UserID)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"alice", "bob", "carol"}, ids); diff != "" {
		t.Errorf("user ids (-want +got):\n%s", diff)
	}
}

func TestService_Secrets(t *testing.T) {
	// Every test's harness checks its errors and logs; this one drives every
	// path that logs or fails, and checks the printed forms of what the
	// service returns as well.
	h := newHarness(t)
	ctx := t.Context()
	_, grant := h.mustLink(t, "alice")
	code := h.lwa.newCode("bob")
	if _, err := h.exchange(ctx, "bob", code); err != nil {
		t.Fatal(err)
	}
	_, _ = h.exchange(ctx, "carol", code)                // the code of another user
	_, _ = h.exchange(ctx, "carol", "ANfakecodeunknown") // refused by LWA
	h.lwa.setExchangeErr(errTransient)
	_, _ = h.exchange(ctx, "carol", h.lwa.newCode("carol"))
	h.lwa.setExchangeErr(nil)

	h.clock.Advance(ttl)
	h.lwa.setRefreshErr(errTransient)
	_, _ = h.token(ctx, "alice")
	h.lwa.setRefreshErr(nil)
	tok := h.mustToken(t, "alice")
	h.lwa.revoke("bob")
	_, _ = h.token(ctx, "bob")
	_, _ = h.token(ctx, "bob")

	logs := h.logs.String()
	for _, want := range []string{"refreshed tokens", "refresh failed", "re-linking"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log output lacks %q; the secret check would prove little:\n%s", want, logs)
		}
	}

	link := h.stored(t, "alice")
	js, err := json.Marshal(struct {
		Token tokens.Token
		Link  *tokens.Link
		Grant tokens.Grant
	}{tok, link, grant})
	if err != nil {
		t.Fatal(err)
	}
	printed := strings.Join([]string{
		fmt.Sprint(tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", tok),
		fmt.Sprintf("%+v", grant), fmt.Sprintf("%#v", grant),
		fmt.Sprintf("%+v", *link), string(js),
	}, "\n")
	for _, s := range h.lwa.secrets() {
		if strings.Contains(printed, s) {
			t.Errorf("printed forms hold the secret %q:\n%s", s, printed)
		}
	}
	if !strings.Contains(printed, "[REDACTED]") {
		t.Errorf("printed forms show no redacted placeholder:\n%s", printed)
	}
}
