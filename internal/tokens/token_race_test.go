package tokens_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// testTokenDeletedDuringRefresh checks that a link deleted while its refresh
// waits at LWA stays deleted, and the caller gets ErrLinkNotFound.
func testTokenDeletedDuringRefresh(t *testing.T) {
	h := newHarness(t)
	h.mustLink(t, "alice")
	h.clock.Advance(ttl)
	release := h.lwa.blockRefresh()
	defer release()
	errc := make(chan error, 1)
	go func() {
		_, err := h.token(t.Context(), "alice")
		errc <- err
	}()
	waitFor(t, "the refresh to reach LWA", func() bool { return h.lwa.blocked.Load() == 1 })
	if err := h.svc.Delete(t.Context(), "alice", tokens.Deletion{Actor: "ops"}); err != nil {
		t.Fatalf("Delete error = %v", err)
	}
	release()
	if err := <-errc; !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Errorf("Token error = %v, want ErrLinkNotFound", err)
	}
	if _, err := h.store.GetLink(t.Context(), "alice"); !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Errorf("link after delete: error = %v, want ErrLinkNotFound (the refresh must not bring it back)", err)
	}
}

// relinkDuringRefresh has alice's refresh wait at LWA while she links
// again, lets refuse decide LWA's answer to the refresh, and returns the new
// link and grant and what Token answered.
func relinkDuringRefresh(t *testing.T, h *harness, refuse bool) (*tokens.Link, tokens.Grant, tokens.Token, error) {
	t.Helper()
	h.mustLink(t, "alice")
	h.clock.Advance(ttl)
	release := h.lwa.blockRefresh()
	defer release()
	type result struct {
		tok tokens.Token
		err error
	}
	resc := make(chan result, 1)
	go func() {
		tok, err := h.token(t.Context(), "alice")
		resc <- result{tok, err}
	}()
	waitFor(t, "the refresh to reach LWA", func() bool { return h.lwa.blocked.Load() == 1 })
	relinked, grant := h.mustLink(t, "alice")
	if refuse {
		h.lwa.setRefreshErr(errRefused)
	}
	release()
	r := <-resc
	h.lwa.setRefreshErr(nil)
	return relinked, grant, r.tok, r.err
}

// testTokenRelinkedDuringRefresh checks that a link made anew while the old
// one's refresh waits at LWA is not overwritten by that refresh, and the caller
// gets the new link's token.
func testTokenRelinkedDuringRefresh(t *testing.T) {
	h := newHarness(t)
	relinked, grant, tok, err := relinkDuringRefresh(t, h, false)
	if err != nil {
		t.Fatalf("Token error = %v", err)
	}
	if got, want := tok.AccessToken, grant.AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the new link's", got.Reveal())
	}
	if diff := cmp.Diff(relinked, h.stored(t, "alice")); diff != "" {
		t.Errorf("stored link (-relinked +stored): the refresh of the old link overwrote the new one:\n%s", diff)
	}
}

// testTokenRefusedWhileRelinked checks that LWA refusing the old link's refresh
// token does not mark the new link RELINK_REQUIRED.
func testTokenRefusedWhileRelinked(t *testing.T) {
	h := newHarness(t)
	relinked, grant, tok, err := relinkDuringRefresh(t, h, true)
	if err != nil {
		t.Fatalf("Token error = %v, want the new link's token", err)
	}
	if got, want := tok.AccessToken, grant.AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the new link's", got.Reveal())
	}
	if diff := cmp.Diff(relinked, h.stored(t, "alice")); diff != "" {
		t.Errorf("stored link (-relinked +stored):\n%s", diff)
	}
}

// testTokenMarkedDuringRefresh checks that a link marked RELINK_REQUIRED
// (Alexa's 403) while its refresh waits at LWA stays marked, whatever LWA
// answers: the caller gets ERELINK, as for any marked link, the stored link is
// as the mark left it, and the refresh records no event.
func testTokenMarkedDuringRefresh(t *testing.T) {
	for _, tt := range []struct {
		name   string
		refuse bool
	}{
		{"Granted", false},
		{"Refused", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.mustLink(t, "alice")
			h.clock.Advance(ttl)
			release := h.lwa.blockRefresh()
			defer release()
			res := h.goToken(t.Context(), h.svc, "alice")
			waitFor(t, "the refresh to reach LWA", func() bool { return h.lwa.blocked.Load() == 1 })
			if err := h.svc.RequireRelink(t.Context(), "alice"); err != nil {
				t.Fatalf("RequireRelink error = %v", err)
			}
			marked, n := h.stored(t, "alice"), h.mark()
			if tt.refuse {
				h.lwa.setRefreshErr(errRefused)
			}
			release()

			r := <-res
			assertCode(t, r.err, tokens.ERELINK)
			if diff := cmp.Diff(marked, h.stored(t, "alice")); diff != "" {
				t.Errorf("stored link changed by the refresh in flight (-marked +stored):\n%s", diff)
			}
			assertEvents(t, h.eventsSince(n), nil, time.Time{})
			h.lwa.setRefreshErr(nil)
			_, err := h.token(t.Context(), "alice")
			assertCode(t, err, tokens.ERELINK)
			assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
		})
	}
}

// TestService_Token_RefusedAfterRewrite: LWA's invalid_grant marks the link
// even when it was written meanwhile with the refused refresh token kept (a
// re-seal), but not when a refresh meanwhile stored a new one.
func TestService_Token_RefusedAfterRewrite(t *testing.T) {
	for _, tt := range []struct {
		name      string
		refreshed bool // the write in between stored a new refresh token
		wantState tokens.State
	}{
		{"TokensKept", false, tokens.StateRelinkRequired},
		{"Refreshed", true, tokens.StateLinked},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			_, grant := h.mustLink(t, "alice")
			h.clock.Advance(ttl)
			release := h.lwa.blockRefresh()
			defer release()
			res := h.goToken(t.Context(), h.svc, "alice")
			waitFor(t, "the refresh to reach LWA", func() bool { return h.lwa.blocked.Load() == 1 })
			cur := h.stored(t, "alice")
			if tt.refreshed {
				// As another instance's refresh would: a new refresh token.
				plain := bytes.ReplaceAll(h.opened(t, cur), []byte(grant.RefreshToken.Reveal()), []byte("Atzr|from-another-refresh"))
				sealed, err := h.sealer.Seal("alice", plain)
				if err != nil {
					t.Fatal(err)
				}
				cur.Tokens = sealed
			}
			if err := h.store.PutLink(t.Context(), cur); err != nil { // a new version
				t.Fatalf("rewrite: %v", err)
			}
			h.lwa.setRefreshErr(errRefused)
			release()

			r := <-res
			if got := h.stored(t, "alice").State; got != tt.wantState {
				t.Errorf("stored state = %v, want %v", got, tt.wantState)
			}
			if tt.wantState == tokens.StateRelinkRequired {
				assertCode(t, r.err, tokens.ERELINK)
			} else if tokens.ErrorCode(r.err) == tokens.ERELINK {
				t.Errorf("Token error = %v, want the link refreshed meanwhile kept", r.err)
			}
		})
	}
}

// TestService_Token_Concurrent checks that many callers of one stale link share
// one refresh.
func TestService_Token_Concurrent(t *testing.T) {
	const callers = 500
	h := newHarness(t)
	h.mustLink(t, "alice")
	h.clock.Advance(ttl + time.Minute)
	release := h.lwa.blockRefresh()
	defer release()

	gets := h.store.gets.Load()
	toks := make([]tokens.Token, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			tok, err := h.token(t.Context(), "alice")
			if err != nil {
				t.Errorf("caller %d: Token error = %v", i, err)
			}
			toks[i] = tok
		})
	}
	// Every caller has read the stale link, and one refresh waits at LWA. A
	// caller that comes to the refresh after it is done starts another, which
	// finds the token fresh: it makes no LWA call either.
	waitFor(t, "all callers to read the link", func() bool {
		return h.store.gets.Load()-gets >= callers+1 && h.lwa.blocked.Load() == 1
	})
	release()
	wg.Wait()

	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
	want := h.lwa.lastGrant().AccessToken
	for i, tok := range toks {
		if tok.AccessToken != want {
			t.Errorf("caller %d: AccessToken = %s, want %s", i, tok.AccessToken.Reveal(), want.Reveal())
			break
		}
	}
	h.assertSealed(t, h.stored(t, "alice"), []tokens.Secret{want, h.lwa.lastGrant().RefreshToken})
}

// TestService_Token_Deadline checks that a caller whose deadline passes gets
// EUNAVAILABLE at once, and that its refresh goes on and is stored.
func TestService_Token_Deadline(t *testing.T) {
	h := newHarness(t)
	h.mustLink(t, "alice")
	h.clock.Advance(ttl)
	release := h.lwa.blockRefresh()
	defer release()

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := h.token(ctx, "alice")
	elapsed := time.Since(began)
	assertCode(t, err, tokens.EUNAVAILABLE)
	if elapsed > 2*time.Second {
		t.Errorf("Token returned after %v, want promptly after its 50ms deadline", elapsed)
	}
	if got, want := h.lwa.blocked.Load(), int64(1); got != want {
		t.Fatalf("refreshes waiting at LWA = %d, want %d: the impatient caller must not cut the refresh short", got, want)
	}
	if got, want := h.stored(t, "alice").State, tokens.StateLinked; got != want {
		t.Errorf("State = %v, want %v", got, want)
	}

	release()
	waitFor(t, "the refresh to be stored", func() bool {
		l := h.stored(t, "alice")
		return l.AccessTokenExpiresAt.Sub(h.clock.Now()) > ahead
	})
	tok := h.mustToken(t, "alice")
	if got, want := tok.AccessToken, h.lwa.lastGrant().AccessToken; got != want {
		t.Errorf("AccessToken = %s, want the one the abandoned refresh got", got.Reveal())
	}
	assertCount(t, "LWA refreshes", h.lwa.refreshes.Load(), 1)
}
