package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// LinkCountStore is what RunLinkCounts checks: a tokens.Store that counts its
// links by state (tokens.LinkCounter).
type LinkCountStore interface {
	tokens.Store
	tokens.LinkCounter
}

// ReportCountStore is what RunReportCounts checks: a reports.Store that
// counts its reports by state (reports.Counter).
type ReportCountStore interface {
	reports.Store
	reports.Counter
}

// RunLinkCounts runs the conformance suite of tokens.LinkCounter against the
// stores that open returns, new and empty for each subtest: the counts follow
// every creation, change of state and deletion, and no failed write. States
// counted zero may be absent or 0.
func RunLinkCounts(t *testing.T, open func(t *testing.T) LinkCountStore) {
	t.Helper()
	s := open(t)
	assertLinkCounts(t, s, map[tokens.State]int{})
	a, b, c := NewLink("a"), NewLink("b"), NewLink("c")
	c.State = tokens.StateRelinkRequired
	for _, l := range []*tokens.Link{a, b, c} {
		MustPut(t, s, l)
	}
	assertLinkCounts(t, s, map[tokens.State]int{tokens.StateLinked: 2, tokens.StateRelinkRequired: 1})

	a.State = tokens.StateRelinkRequired
	MustPut(t, s, a)
	MustPut(t, s, a) // no change of state
	assertLinkCounts(t, s, map[tokens.State]int{tokens.StateLinked: 1, tokens.StateRelinkRequired: 2})

	stale := clone(b)
	MustPut(t, s, b)
	stale.State = tokens.StateRelinkRequired
	if err := s.PutLink(t.Context(), stale); err == nil {
		t.Fatal("PutLink(stale) succeeded")
	}
	if err := s.DeleteLink(t.Context(), "nobody"); err == nil {
		t.Fatal("DeleteLink(missing) succeeded")
	}
	assertLinkCounts(t, s, map[tokens.State]int{tokens.StateLinked: 1, tokens.StateRelinkRequired: 2})

	if err := s.DeleteLink(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLink(t.Context(), "b"); err != nil {
		t.Fatal(err)
	}
	assertLinkCounts(t, s, map[tokens.State]int{tokens.StateRelinkRequired: 1})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.CountLinks(ctx); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
		t.Errorf("CountLinks(ended context) error = %v, want EUNAVAILABLE", err)
	}
}

// RunReportCounts runs the conformance suite of reports.Counter against the
// stores that open returns, new and empty for each subtest: the counts follow
// every creation, change of state and removal, and no failed write.
func RunReportCounts(t *testing.T, open func(t *testing.T) ReportCountStore) {
	t.Helper()
	s := open(t)
	assertReportCounts(t, s, map[reports.State]int{})
	r1, r2, r3 := NewReport("m1", "u1", reportT0), NewReport("m2", "u1", reportT0), NewReport("m3", "u2", reportT0)
	for _, r := range []*reports.Report{r1, r2, r3} {
		mustCreate(t, s, r)
	}
	if _, created, err := s.CreateReport(t.Context(), NewReport("m1", "u9", reportT0)); err != nil || created {
		t.Fatalf("CreateReport(existing id) = created %v, %v", created, err)
	}
	assertReportCounts(t, s, map[reports.State]int{reports.StatePending: 3})

	mustFinish(t, s, r1, reports.StateDelivered, reportT0.Add(time.Minute))
	mustFinish(t, s, r3, reports.StateFailed, reportT0.Add(time.Hour))
	r2.Attempts = 1
	mustPutReport(t, s, r2) // no change of state
	assertReportCounts(t, s, map[reports.State]int{reports.StatePending: 1, reports.StateDelivered: 1, reports.StateFailed: 1})

	stale := *r2
	r2.Attempts = 2
	mustPutReport(t, s, r2)
	stale.State = reports.StateSuperseded
	if err := s.PutReport(t.Context(), &stale); err == nil {
		t.Fatal("PutReport(stale) succeeded")
	}
	assertReportCounts(t, s, map[reports.State]int{reports.StatePending: 1, reports.StateDelivered: 1, reports.StateFailed: 1})

	if n, err := s.DeleteFinishedReports(t.Context(), reportT0.Add(30*time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteFinishedReports = %d, %v; want 1, nil", n, err)
	}
	assertReportCounts(t, s, map[reports.State]int{reports.StatePending: 1, reports.StateFailed: 1})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.CountReports(ctx); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
		t.Errorf("CountReports(ended context) error = %v, want EUNAVAILABLE", err)
	}
}

func assertLinkCounts(tb testing.TB, s tokens.LinkCounter, want map[tokens.State]int) {
	tb.Helper()
	got, err := s.CountLinks(tb.Context())
	if err != nil {
		tb.Fatalf("CountLinks error = %v", err)
	}
	if diff := cmp.Diff(want, withoutZeros(got)); diff != "" {
		tb.Errorf("CountLinks (-want +got):\n%s", diff)
	}
}

func assertReportCounts(tb testing.TB, s reports.Counter, want map[reports.State]int) {
	tb.Helper()
	got, err := s.CountReports(tb.Context())
	if err != nil {
		tb.Fatalf("CountReports error = %v", err)
	}
	if diff := cmp.Diff(want, withoutZeros(got)); diff != "" {
		tb.Errorf("CountReports (-want +got):\n%s", diff)
	}
}

// withoutZeros returns m without its zero counts, never nil.
func withoutZeros[K comparable](m map[K]int) map[K]int {
	out := map[K]int{}
	for k, n := range m {
		if n != 0 {
			out[k] = n
		}
	}
	return out
}
