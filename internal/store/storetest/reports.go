package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
)

// RunReports runs the conformance suite of the reports outbox (reports.Store)
// against the stores that open returns, new and empty for each subtest.
func RunReports(t *testing.T, open func(t *testing.T) reports.Store) {
	t.Helper()
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC)

	t.Run("CreateAndGet", func(t *testing.T) {
		s := open(t)
		r := NewReport("m1", "u1", t0)
		got, created, err := s.CreateReport(t.Context(), r)
		if err != nil || !created || got != r {
			t.Fatalf("CreateReport = %v, %v, %v; want the report, created", got, created, err)
		}
		if r.Seq <= 0 || r.Version <= 0 {
			t.Errorf("Seq %d, Version %d; want both set", r.Seq, r.Version)
		}
		stored, err := s.GetReport(t.Context(), "m1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(r, stored); diff != "" {
			t.Errorf("stored report differs (-want +got):\n%s", diff)
		}
	})
	t.Run("GetMissing", func(t *testing.T) {
		if _, err := open(t).GetReport(t.Context(), "nope"); !errors.Is(err, reports.ErrReportNotFound) {
			t.Errorf("err = %v, want ErrReportNotFound", err)
		}
	})
	t.Run("CreateExisting", func(t *testing.T) {
		s := open(t)
		first := NewReport("m1", "u1", t0)
		mustCreate(t, s, first)
		again := NewReport("m1", "u2", t0.Add(time.Hour))
		got, created, err := s.CreateReport(t.Context(), again)
		if err != nil || created {
			t.Fatalf("second CreateReport: created %v, err %v; want the existing report", created, err)
		}
		if got.UserID != "u1" || got.Seq != first.Seq {
			t.Errorf("returned %+v, want the first report", got)
		}
	})
	t.Run("SeqGrows", func(t *testing.T) {
		s := open(t)
		var last int64
		for i := range 5 {
			r := NewReport(fmt.Sprint("m", i), "u1", t0)
			mustCreate(t, s, r)
			if r.Seq <= last {
				t.Fatalf("Seq %d after %d; want it to grow", r.Seq, last)
			}
			last = r.Seq
		}
	})
	t.Run("PutVersions", func(t *testing.T) {
		s := open(t)
		r := NewReport("m1", "u1", t0)
		mustCreate(t, s, r)
		stale := *r
		r.Attempts, r.LastError = 1, "503"
		if err := s.PutReport(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if err := s.PutReport(t.Context(), &stale); !errors.Is(err, reports.ErrVersionConflict) {
			t.Errorf("stale PutReport: %v, want ErrVersionConflict", err)
		}
		missing := NewReport("gone", "u1", t0)
		missing.Version = 1
		if err := s.PutReport(t.Context(), missing); !errors.Is(err, reports.ErrReportNotFound) {
			t.Errorf("PutReport of a missing report: %v, want ErrReportNotFound", err)
		}
	})
	t.Run("Pending", func(t *testing.T) {
		s := open(t)
		a1, a2, b1 := NewReport("a1", "a", t0), NewReport("a2", "a", t0), NewReport("b1", "b", t0)
		later := NewReport("c1", "c", t0)
		later.NextAttemptAt = t0.Add(time.Hour)
		for _, r := range []*reports.Report{a1, a2, b1, later} {
			mustCreate(t, s, r)
		}
		due, err := s.PendingReports(t.Context(), t0, 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(due); len(got) != 3 || !got["a1"] || !got["a2"] || !got["b1"] {
			t.Errorf("due = %v, want a1 a2 b1", got)
		}
		if due, _ := s.PendingReports(t.Context(), t0, 2); len(due) != 2 {
			t.Errorf("limit 2 gave %d reports", len(due))
		}
		b1.State, b1.FinishedAt = reports.StateDelivered, t0
		if err := s.PutReport(t.Context(), b1); err != nil {
			t.Fatal(err)
		}
		due, _ = s.PendingReports(t.Context(), t0.Add(2*time.Hour), 100)
		if got := ids(due); len(got) != 3 || got["b1"] {
			t.Errorf("after delivering b1, due = %v, want a1 a2 c1", got)
		}
		user, err := s.UserPendingReports(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		if len(user) != 2 || user[0].MessageID != "a1" || user[1].MessageID != "a2" {
			t.Errorf("user a pending = %v, want a1 then a2", ids(user))
		}
		if user, _ := s.UserPendingReports(t.Context(), "b"); len(user) != 0 {
			t.Errorf("user b pending = %v, want none", ids(user))
		}
	})
	t.Run("DeleteFinished", func(t *testing.T) {
		s := open(t)
		old, recent, pending := NewReport("old", "u", t0), NewReport("recent", "u", t0), NewReport("pending", "u", t0)
		for _, r := range []*reports.Report{old, recent, pending} {
			mustCreate(t, s, r)
		}
		for r, at := range map[*reports.Report]time.Time{old: t0, recent: t0.Add(48 * time.Hour)} {
			r.State, r.FinishedAt = reports.StateFailed, at
			if err := s.PutReport(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.DeleteFinishedReports(t.Context(), t0.Add(24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("DeleteFinishedReports = %d, %v; want 1", n, err)
		}
		if _, err := s.GetReport(t.Context(), "old"); !errors.Is(err, reports.ErrReportNotFound) {
			t.Errorf("old report still there: %v", err)
		}
		for _, id := range []string{"recent", "pending"} {
			if _, err := s.GetReport(t.Context(), id); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	})
	t.Run("ConcurrentCreate", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		created := 0
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := s.CreateReport(t.Context(), NewReport("same", "u", t0))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if created != 1 {
			t.Errorf("%d creations of one message id, want 1", created)
		}
	})
}

// NewReport returns a valid PENDING report due at at.
func NewReport(messageID, userID string, at time.Time) *reports.Report {
	return &reports.Report{
		MessageID: messageID, UserID: userID, State: reports.StatePending,
		SubmittedAt: at, NextAttemptAt: at,
		Profiles: []reports.Profile{{
			ProfileID: "baby-1",
			Name:      reports.Name{FirstName: "Jennifer", LastName: "Doe", NickNames: []string{"Jenny"}},
			Capabilities: []reports.Capability{{
				Name: "Alexa.Health.Sleep", Type: "AlexaInterface", Version: "1",
				SupportedOperations: []string{"Add", "Get", "Start", "Stop"},
			}},
		}},
	}
}

func mustCreate(tb testing.TB, s reports.Store, r *reports.Report) {
	tb.Helper()
	if _, created, err := s.CreateReport(tb.Context(), r); err != nil || !created {
		tb.Fatalf("CreateReport(%s): created %v, err %v", r.MessageID, created, err)
	}
}

func ids(rs []*reports.Report) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.MessageID] = true
	}
	return m
}
