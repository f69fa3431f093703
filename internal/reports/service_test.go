package reports_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// submitHarness is a Service over the fakes, with a fixed clock.
type submitHarness struct {
	svc    *reports.Service
	store  *memReports
	tokens *fakeTokens
	obs    *fakeObserver
	now    time.Time
}

func newSubmitHarness(tb testing.TB) *submitHarness {
	tb.Helper()
	h := &submitHarness{
		store: newMemReports(), tokens: newFakeTokens(), obs: &fakeObserver{},
		now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
	}
	h.tokens.link("u1", "EU")
	h.tokens.link("u2", "")
	h.svc = reports.NewService(h.store, h.tokens)
	h.svc.Now = func() time.Time { return h.now }
	h.svc.Observer = h.obs
	return h
}

func TestService_Submit(t *testing.T) {
	ps := sample(t).Profiles

	t.Run("NewMessageID", func(t *testing.T) {
		h := newSubmitHarness(t)
		r, err := h.svc.Submit(t.Context(), "", "u1", "", ps)
		if err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		if _, err := uuid.Parse(r.MessageID); err != nil {
			t.Errorf("MessageID %q is not a UUID: %v", r.MessageID, err)
		}
		if got, want := r.State, reports.StatePending; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
		if !r.SubmittedAt.Equal(h.now) || !r.NextAttemptAt.Equal(h.now) {
			t.Errorf("SubmittedAt %v, NextAttemptAt %v; want both %v", r.SubmittedAt, r.NextAttemptAt, h.now)
		}
		stored, err := h.svc.Report(t.Context(), r.MessageID)
		if err != nil {
			t.Fatalf("Report() error = %v", err)
		}
		if diff := cmp.Diff(r, stored); diff != "" {
			t.Errorf("stored report differs (-submitted +stored):\n%s", diff)
		}
		other, err := h.svc.Submit(t.Context(), "", "u1", "", ps)
		if err != nil {
			t.Fatalf("second Submit() error = %v", err)
		}
		if other.MessageID == r.MessageID {
			t.Errorf("two submissions without a message id both got %q", r.MessageID)
		}
		if got, want := h.obs.get().Accepted, 2; got != want {
			t.Errorf("Accepted() calls = %d, want %d", got, want)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		h := newSubmitHarness(t)
		first, err := h.svc.Submit(t.Context(), "", "u1", "m-1", ps)
		if err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		h.now = h.now.Add(time.Minute)
		again, err := h.svc.Submit(t.Context(), "", "u1", "m-1", []reports.Profile{profile("other")})
		if err != nil {
			t.Fatalf("Submit() again error = %v", err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("second Submit returned another report (-first +second):\n%s", diff)
		}
		if got, want := h.store.creates.Load(), int64(1); got != want {
			t.Errorf("reports created = %d, want %d", got, want)
		}
		if got, want := h.obs.get().Accepted, 1; got != want {
			t.Errorf("Accepted() calls = %d, want %d", got, want)
		}
	})

	t.Run("SameIDOtherUser", func(t *testing.T) {
		h := newSubmitHarness(t)
		if _, err := h.svc.Submit(t.Context(), "", "u1", "m-1", ps); err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		r, err := h.svc.Submit(t.Context(), "", "u2", "m-1", ps)
		if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
			t.Fatalf("Submit(other user) = %v, %v; want an %s error", r, err, want)
		}
		if msg := tokens.ErrorMessage(err); !strings.HasPrefix(msg, "message_id") {
			t.Errorf("message %q does not name message_id", msg)
		}
		stored, err := h.svc.Report(t.Context(), "m-1")
		if err != nil || stored.UserID != "u1" {
			t.Errorf("stored report = %+v, %v; want u1's", stored, err)
		}
	})

	t.Run("NotLinked", func(t *testing.T) {
		h := newSubmitHarness(t)
		_, err := h.svc.Submit(t.Context(), "", "nobody", "m-1", ps)
		if !errors.Is(err, tokens.ErrLinkNotFound) || tokens.ErrorCode(err) != tokens.ENOTFOUND {
			t.Fatalf("Submit(unlinked) error = %v, want ErrLinkNotFound", err)
		}
		if n := h.store.len(); n != 0 {
			t.Errorf("store holds %d reports, want 0", n)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		h := newSubmitHarness(t)
		bad := []reports.Profile{profile("baby-1"), profile("baby-2")}
		bad[1].Name.NickNames = nil
		_, err := h.svc.Submit(t.Context(), "", "u1", "m-1", bad)
		if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
			t.Fatalf("Submit(invalid) error = %v, want an %s error", err, want)
		}
		if got, want := tokens.ErrorMessage(err), "profiles[1].name.nickNames"; !strings.HasPrefix(got, want) {
			t.Errorf("message %q does not name %q", got, want)
		}
		if n := h.store.len(); n != 0 {
			t.Errorf("store holds %d reports, want 0", n)
		}
		if got := h.obs.get().Accepted; got != 0 {
			t.Errorf("Accepted() calls = %d, want 0", got)
		}
	})

	t.Run("StoreUnavailable", func(t *testing.T) {
		h := newSubmitHarness(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := h.svc.Submit(ctx, "", "u1", "m-1", ps)
		if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
			t.Fatalf("Submit() error = %v, want an %s error", err, want)
		}
	})

	t.Run("ProfilesCopied", func(t *testing.T) {
		h := newSubmitHarness(t)
		mine := []reports.Profile{profile("baby-1")}
		if _, err := h.svc.Submit(t.Context(), "", "u1", "m-1", mine); err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		mine[0] = profile("changed")
		stored, err := h.svc.Report(t.Context(), "m-1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stored.Profiles[0].ProfileID, "baby-1"; got != want {
			t.Errorf("stored profile id = %q, want %q", got, want)
		}
	})
}

func TestService_Report(t *testing.T) {
	h := newSubmitHarness(t)
	if _, err := h.svc.Report(t.Context(), "nope"); !errors.Is(err, reports.ErrReportNotFound) {
		t.Errorf("Report(missing) error = %v, want ErrReportNotFound", err)
	}
}
