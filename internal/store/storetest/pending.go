package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// PendingListStore is what RunPendingReports checks: a reports.Store that
// lists its pending reports (reports.PendingLister).
type PendingListStore interface {
	reports.Store
	reports.PendingLister
}

// RunPendingReports runs the conformance suite of reports.PendingLister
// against the stores that open returns, new and empty for each subtest:
// paging from the first page to the last returns every PENDING report once,
// whatever its kind, skill or user and whether it is due, a lane's reports by
// Seq, and no report in an end state; a cursor the store did not give is
// refused.
func RunPendingReports(t *testing.T, open func(t *testing.T) PendingListStore) {
	t.Helper()
	t.Run("Empty", func(t *testing.T) {
		page, err := open(t).PendingReports(t.Context(), "", 0)
		if err != nil || len(page.Reports) != 0 || page.Next != "" {
			t.Errorf("PendingReports of an empty store = %v, next %q, %v; want none", ids(page.Reports), page.Next, err)
		}
	})

	t.Run("Every", func(t *testing.T) {
		s := open(t)
		var pending []*reports.Report
		add := func(r *reports.Report, final reports.State) {
			mustCreate(t, s, r)
			if final != 0 {
				mustFinish(t, s, r, final, reportT0)
				return
			}
			pending = append(pending, r)
		}
		later := NewReport("a2", "a", reportT0)
		later.NextAttemptAt = reportT0.Add(time.Hour) // not due: listed all the same
		later.Attempts, later.LastError = 2, "Alexa answered 503"
		add(NewReport("a1", "a", reportT0), 0)
		add(later, 0)
		add(NewReport("a3", "a", reportT0), reports.StateDelivered)
		add(NewReport("b1", "b", reportT0), reports.StateFailed)
		add(NewReport("b2", "b", reportT0), 0)
		add(NewAlexaEvent("e1", "home", "a", reportT0), 0)
		add(NewAlexaEvent("e2", "home", "a", reportT0), 0)
		add(NewAlexaEvent("e3", "home", "c", reportT0), reports.StateFailed)
		baby := NewReport("r1", "a", reportT0)
		baby.SkillID, baby.Kind = "baby", reports.KindProfileReport
		add(baby, 0)
		for i := range 5 {
			add(NewReport(fmt.Sprint("u", i), fmt.Sprint("user-", i), reportT0), 0)
		}

		for _, limit := range []int{0, 1, 2, 3, len(pending), len(pending) + 1} {
			t.Run(fmt.Sprint("Limit", limit), func(t *testing.T) {
				got := allPending(t, s, limit)
				byID := func(a, b *reports.Report) int { return strings.Compare(a.MessageID, b.MessageID) }
				want := slices.SortedFunc(slices.Values(pending), byID)
				if diff := cmp.Diff(want, slices.SortedFunc(slices.Values(got), byID)); diff != "" {
					t.Errorf("pending reports differ (-want +got):\n%s", diff)
				}
				// A lane's reports come together, by Seq.
				var lanes []string
				last := map[string]int64{}
				for _, r := range got {
					lane := r.Lane()
					if seq, seen := last[lane]; seen {
						if lanes[len(lanes)-1] != lane || r.Seq <= seq {
							t.Errorf("report %s of lane %q out of its lane's order", r.MessageID, lane)
						}
					} else {
						lanes = append(lanes, lane)
					}
					last[lane] = r.Seq
				}
			})
		}
	})

	t.Run("BadCursor", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, NewReport("m1", "u", reportT0))
		for _, cursor := range []string{"%%%", "not base64!", "\xff"} {
			_, err := s.PendingReports(t.Context(), cursor, 0)
			assertReportCode(t, fmt.Sprintf("PendingReports(%q)", cursor), err, tokens.EINVALID)
		}
	})
}

// allPending pages through s's pending reports, limit at a time, and returns
// them in the order they came.
func allPending(tb testing.TB, s reports.PendingLister, limit int) []*reports.Report {
	tb.Helper()
	var got []*reports.Report
	cursor := ""
	for range 100 {
		page, err := s.PendingReports(tb.Context(), cursor, limit)
		if err != nil {
			tb.Fatalf("PendingReports(%q, %d) error = %v", cursor, limit, err)
		}
		if n := tokens.PageSize(limit); len(page.Reports) > n {
			tb.Fatalf("PendingReports(%q, %d) = %d reports, more than %d", cursor, limit, len(page.Reports), n)
		}
		got = append(got, page.Reports...)
		if cursor = page.Next; cursor == "" {
			return got
		}
	}
	tb.Fatalf("PendingReports(limit %d) did not end", limit)
	return nil
}
