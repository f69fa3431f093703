package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// RunReports runs the conformance suite of the reports outbox (reports.Store)
// against the stores that open returns. open is called once per subtest and
// must return a new, empty store that is ready for use; it registers whatever
// cleanup the store needs with t.Cleanup.
//
// Beyond the doc comments of reports.Store, the suite pins down:
//
//   - Reports round-trip field by field, times to the nanosecond as instants.
//   - A failed PutReport leaves r.Version and the stored report as they were.
//   - Every rule the domain states once is kept by every store:
//     reports.(*Report).CheckStorable in CreateReport and PutReport,
//     reports.CheckMessageID in GetReport, tokens.PageSize in DueReports,
//     reports.CheckDeliveryClaim in ClaimDelivery.
//   - DueReports stands for each user by the user's newest pending report,
//     whatever user ids hold ('#', '\', a zero byte, one id the prefix of
//     another).
//   - The store compares the times ClaimDelivery is given, never its own
//     clock: a claim that ends at until is held at now == until, and free at
//     any now after it. Claims of different users are independent, and of
//     concurrent claims of a free user exactly one is held.
func RunReports(t *testing.T, open func(t *testing.T) reports.Store) {
	t.Helper()
	t.Run("CreateReport", func(t *testing.T) { testCreateReport(t, open) })
	t.Run("GetReport", func(t *testing.T) { testGetReport(t, open) })
	t.Run("PutReport", func(t *testing.T) { testPutReport(t, open) })
	t.Run("DueReports", func(t *testing.T) { testDueReports(t, open) })
	t.Run("LanePendingReports", func(t *testing.T) { testLanePendingReports(t, open) })
	t.Run("DeleteFinishedReports", func(t *testing.T) { testDeleteFinishedReports(t, open) })
	t.Run("ClaimDelivery", func(t *testing.T) { testClaimDelivery(t, open) })
	t.Run("DeliveredMark", func(t *testing.T) { testDeliveredMark(t, open) })
	t.Run("Lanes", func(t *testing.T) { testLanes(t, open) })
}

// reportT0 is the time the suite's reports are submitted at: nanoseconds set,
// so that a store that rounds times fails.
var reportT0 = time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC)

// unstorable lists reports that fail reports.(*Report).CheckStorable, by name.
var unstorable = []struct {
	name   string
	change func(r *reports.Report)
}{
	{"EmptyMessageID", func(r *reports.Report) { r.MessageID = "" }},
	{"MessageIDTooLong", func(r *reports.Report) { r.MessageID = strings.Repeat("m", reports.MaxMessageIDLen+1) }},
	{"MessageIDNotUTF8", func(r *reports.Report) { r.MessageID = "m\xff" }},
	{"NoUserID", func(r *reports.Report) { r.UserID = "" }},
	{"NoState", func(r *reports.Report) { r.State = 0 }},
	{"UnknownState", func(r *reports.Report) { r.State = reports.StateSuperseded + 1 }},
}

func testCreateReport(t *testing.T, open func(t *testing.T) reports.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		r := NewReport("m1", "u1", reportT0)
		got, created, err := s.CreateReport(t.Context(), r)
		if err != nil || !created || got != r {
			t.Fatalf("CreateReport = %v, %v, %v; want the report, created", got, created, err)
		}
		if r.Seq <= 0 || r.Version <= 0 {
			t.Errorf("Seq %d, Version %d; want both set", r.Seq, r.Version)
		}
		assertStoredReport(t, s, r)
	})

	t.Run("Existing", func(t *testing.T) {
		first := NewReport("m1", "u1", reportT0)
		s := openWith(t, open, first)
		again := NewReport("m1", "u2", reportT0.Add(time.Hour))
		got, created, err := s.CreateReport(t.Context(), again)
		if err != nil || created {
			t.Fatalf("second CreateReport: created %v, err %v; want the existing report", created, err)
		}
		if got.UserID != "u1" || got.Seq != first.Seq {
			t.Errorf("returned %+v, want the first report", got)
		}
		assertStoredReport(t, s, first)
	})

	t.Run("SeqGrows", func(t *testing.T) {
		s := open(t)
		var last int64
		for i := range 5 {
			r := NewReport(fmt.Sprint("m", i), "u1", reportT0)
			mustCreate(t, s, r)
			if r.Seq <= last {
				t.Fatalf("Seq %d after %d; want it to grow", r.Seq, last)
			}
			last = r.Seq
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		created := 0
		for range 20 {
			wg.Go(func() {
				_, ok, err := s.CreateReport(t.Context(), NewReport("same", "u", reportT0))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					created++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if created != 1 {
			t.Errorf("%d creations of one message id, want 1", created)
		}
	})

	t.Run("LongestMessageID", func(t *testing.T) {
		r := NewReport(strings.Repeat("m", reports.MaxMessageIDLen), "u1", reportT0)
		s := openWith(t, open, r)
		assertStoredReport(t, s, r)
	})

	t.Run("NotKept", func(t *testing.T) {
		r := NewReport("m1", "u1", reportT0)
		s := openWith(t, open, r)
		want := *r
		want.Profiles = NewReport("m1", "u1", reportT0).Profiles
		r.Attempts = 9
		r.Profiles[0].Name.NickNames[0] = "changed"
		assertStoredReport(t, s, &want)
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range unstorable {
			t.Run(tt.name, func(t *testing.T) {
				s := open(t)
				r := NewReport("m1", "u1", reportT0)
				tt.change(r)
				_, created, err := s.CreateReport(t.Context(), r)
				assertReportCode(t, "CreateReport", err, tokens.EINVALID)
				if created {
					t.Errorf("CreateReport of an invalid report: created")
				}
				if due, err := s.DueReports(t.Context(), reportT0, 0); err != nil || len(due) != 0 {
					t.Errorf("after refusing a report, DueReports = %v, %v; want none", ids(due), err)
				}
			})
		}
	})
}

func testGetReport(t *testing.T, open func(t *testing.T) reports.Store) {
	for _, tt := range []struct{ name, id string }{
		{"NotFound", "nope"},
		{"EmptyID", ""},
		{"IDTooLong", strings.Repeat("m", reports.MaxMessageIDLen+1)},
		{"IDLongerThanAnyKey", strings.Repeat("m", 4096)},
		{"IDNotUTF8", "m\xff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := open(t).GetReport(t.Context(), tt.id)
			if !errors.Is(err, reports.ErrReportNotFound) {
				t.Fatalf("GetReport(%.20q) = %v, %v; want ErrReportNotFound", tt.id, r, err)
			}
			assertReportCode(t, "GetReport", err, tokens.ENOTFOUND)
		})
	}

	t.Run("ReturnsCopy", func(t *testing.T) {
		r := NewReport("m1", "u1", reportT0)
		s := openWith(t, open, r)
		got := mustGetReport(t, s, "m1")
		got.State, got.Attempts = reports.StateFailed, 3
		got.Profiles[0].ProfileID = "changed"
		got.Profiles[0].Capabilities[0].SupportedOperations[0] = "changed"
		assertStoredReport(t, s, r)
	})
}

func testPutReport(t *testing.T, open func(t *testing.T) reports.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		r := NewReport("m1", "u1", reportT0)
		s := openWith(t, open, r)
		created := r.Version
		r.State, r.Attempts, r.LastError = reports.StateDelivered, 2, "Alexa Health API answered 503: Service Unavailable"
		r.NextAttemptAt = reportT0.Add(time.Minute + time.Nanosecond)
		r.DeliveredAt, r.FinishedAt = reportT0.Add(2*time.Minute+3), reportT0.Add(2*time.Minute+4)
		mustPutReport(t, s, r)
		if r.Version == created {
			t.Errorf("Version %d after PutReport, want a new one", r.Version)
		}
		assertStoredReport(t, s, r)
	})

	t.Run("VersionConflict", func(t *testing.T) {
		r := NewReport("m1", "u1", reportT0)
		s := openWith(t, open, r)
		stale := *r
		r.Attempts, r.LastError = 1, "503"
		mustPutReport(t, s, r)
		stale.Attempts = 2
		staleVersion := stale.Version
		err := s.PutReport(t.Context(), &stale)
		if !errors.Is(err, reports.ErrVersionConflict) {
			t.Fatalf("stale PutReport: %v, want ErrVersionConflict", err)
		}
		assertReportCode(t, "PutReport", err, tokens.ECONFLICT)
		if got, want := stale.Version, staleVersion; got != want {
			t.Errorf("failed PutReport changed Version to %d, want %d", got, want)
		}
		assertStoredReport(t, s, r)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		missing := NewReport("gone", "u1", reportT0)
		missing.Version = 1
		err := s.PutReport(t.Context(), missing)
		if !errors.Is(err, reports.ErrReportNotFound) {
			t.Fatalf("PutReport of a missing report: %v, want ErrReportNotFound", err)
		}
		assertReportCode(t, "PutReport", err, tokens.ENOTFOUND)
		if missing.Version != 1 {
			t.Errorf("failed PutReport changed Version to %d, want 1", missing.Version)
		}
		if _, err := s.GetReport(t.Context(), "gone"); !errors.Is(err, reports.ErrReportNotFound) {
			t.Errorf("after PutReport of a missing report, GetReport error = %v, want ErrReportNotFound", err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, tt := range unstorable {
			t.Run(tt.name, func(t *testing.T) {
				stored := NewReport("m1", "u1", reportT0)
				s := openWith(t, open, stored)
				r := *stored
				r.Profiles = NewReport("m1", "u1", reportT0).Profiles
				tt.change(&r)
				assertReportCode(t, "PutReport", s.PutReport(t.Context(), &r), tokens.EINVALID)
				if r.Version != stored.Version {
					t.Errorf("failed PutReport changed Version to %d, want %d", r.Version, stored.Version)
				}
				assertStoredReport(t, s, stored)
			})
		}
	})
}

func testDueReports(t *testing.T, open func(t *testing.T) reports.Store) {
	// openPending returns a store holding a1, a2 (user a) and b1 (user b), due
	// at reportT0, and c1 (user c), due an hour later; and b1.
	openPending := func(t *testing.T) (s reports.Store, b1 *reports.Report) {
		t.Helper()
		b1, c1 := NewReport("b1", "b", reportT0), NewReport("c1", "c", reportT0)
		c1.NextAttemptAt = reportT0.Add(time.Hour)
		return openWith(t, open, NewReport("a1", "a", reportT0), NewReport("a2", "a", reportT0), b1, c1), b1
	}

	t.Run("Due", func(t *testing.T) {
		s, _ := openPending(t)
		assertDue(t, s, reportT0, 100, "a2", "b1")
		assertDue(t, s, reportT0.Add(-time.Nanosecond), 100)
		assertDue(t, s, reportT0.Add(time.Hour), 100, "a2", "b1", "c1")
	})

	t.Run("NotFinished", func(t *testing.T) {
		s, b1 := openPending(t)
		mustFinish(t, s, b1, reports.StateDelivered, reportT0)
		assertDue(t, s, reportT0.Add(2*time.Hour), 100, "a2", "c1")
	})

	t.Run("NewestStandsForItsUser", func(t *testing.T) {
		// Many due reports of a, whose newest waits: a takes no place, and b
		// is found behind them whatever the limit.
		var rs []*reports.Report
		for i := range 30 {
			rs = append(rs, NewReport(fmt.Sprint("a", i), "a", reportT0))
		}
		rs = append(rs, NewReport("b1", "b", reportT0))
		s := openWith(t, open, rs...)
		assertDue(t, s, reportT0, 1, "a29")
		newest := rs[29]
		newest.NextAttemptAt = reportT0.Add(time.Minute)
		mustPutReport(t, s, newest)
		assertDue(t, s, reportT0, 1, "b1")
		assertDue(t, s, reportT0, 100, "b1")
		// Once the newest is finished, the next newer one stands for a.
		mustFinish(t, s, newest, reports.StateFailed, reportT0)
		assertDue(t, s, reportT0, 100, "a28", "b1")
	})

	t.Run("UserIDs", func(t *testing.T) {
		// User ids that escape or prefix one another stay apart.
		users := []string{"u", "u#", "u#1", `u\`, `u\#`, "u\x00", "u\x00\x00", "u\x01"}
		var rs []*reports.Report
		var want []string
		for i, u := range users {
			rs = append(rs, NewReport(fmt.Sprint("old", i), u, reportT0), NewReport(fmt.Sprint("new", i), u, reportT0))
			want = append(want, fmt.Sprint("new", i))
		}
		s := openWith(t, open, rs...)
		assertDue(t, s, reportT0, 100, want...)
	})

	t.Run("Limit", func(t *testing.T) {
		s, _ := openPending(t)
		due, err := s.DueReports(t.Context(), reportT0, 1)
		if err != nil || len(due) != 1 {
			t.Fatalf("DueReports(limit 1) = %v, %v; want 1 report", ids(due), err)
		}
		if id := due[0].MessageID; id != "a2" && id != "b1" {
			t.Errorf("DueReports(limit 1) returned %s, which is not a due user's newest", id)
		}
	})

	t.Run("DefaultLimit", func(t *testing.T) {
		s := open(t)
		for i := range tokens.DefaultPageSize + 1 {
			mustCreate(t, s, NewReport(fmt.Sprint("m", i), fmt.Sprint("u", i), reportT0))
		}
		for _, limit := range []int{0, -1} {
			due, err := s.DueReports(t.Context(), reportT0, limit)
			if err != nil || len(due) != tokens.DefaultPageSize {
				t.Errorf("DueReports(limit %d) = %d reports, %v; want %d", limit, len(due), err, tokens.DefaultPageSize)
			}
		}
	})
}

func testClaimDelivery(t *testing.T, open func(t *testing.T) reports.Store) {
	at := func(d time.Duration) time.Time { return reportT0.Add(d) }
	const user = "user-1"

	type step struct {
		claim      bool // else release
		owner      string
		now, until time.Duration
		wantHeld   bool
		what       string
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"Free", []step{{true, "a", 0, time.Minute, true, "free claim"}}},
		{"SecondOwnerRefused", []step{
			{true, "a", 0, time.Minute, true, "free claim"},
			{true, "b", time.Second, time.Minute, false, "claim a holds"},
			{true, "a", 2 * time.Second, 2 * time.Minute, true, "a's own claim, extended"},
			{true, "b", 90 * time.Second, 3 * time.Minute, false, "claim a extended"},
		}},
		{"HeldUntilItsEnd", []step{
			{true, "a", 0, time.Minute, true, "free claim"},
			{true, "b", time.Minute, 2 * time.Minute, false, "claim at its last instant"},
			{true, "b", time.Minute + time.Nanosecond, 2 * time.Minute, true, "claim just ended"},
			{true, "a", time.Minute + 2*time.Nanosecond, 2 * time.Minute, false, "claim b took over"},
		}},
		{"Release", []step{
			{true, "a", 0, time.Minute, true, "free claim"},
			{false, "b", 0, 0, false, "release by b, who holds nothing"},
			{true, "b", time.Second, time.Minute, false, "claim a still holds"},
			{false, "a", 0, 0, false, "release by a"},
			{true, "b", 2 * time.Second, time.Minute, true, "released claim"},
		}},
		{"ReleaseFree", []step{
			{false, "a", 0, 0, false, "release of a claim nobody holds"},
			{true, "b", 0, time.Minute, true, "free claim"},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			for i, st := range tt.steps {
				if !st.claim {
					if err := s.ReleaseDelivery(t.Context(), user, st.owner); err != nil {
						t.Fatalf("step %d (%s): ReleaseDelivery(%q) error = %v", i, st.what, st.owner, err)
					}
					continue
				}
				_, held, err := s.ClaimDelivery(t.Context(), user, st.owner, at(st.now), at(st.until))
				if err != nil {
					t.Fatalf("step %d (%s): ClaimDelivery(%q) error = %v", i, st.what, st.owner, err)
				}
				if held != st.wantHeld {
					t.Errorf("step %d (%s): ClaimDelivery(%q, now +%s) held = %v, want %v", i, st.what, st.owner, st.now, held, st.wantHeld)
				}
			}
		})
	}

	t.Run("SeparateUsers", func(t *testing.T) {
		s := open(t)
		for _, u := range []string{"user-1", "user-2", "user-1#x", "user"} {
			if _, held, err := s.ClaimDelivery(t.Context(), u, "owner-"+u, reportT0, at(time.Minute)); err != nil || !held {
				t.Errorf("ClaimDelivery(%q) = %v, %v; want a claim of its own", u, held, err)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		const owners = 20
		s := open(t)
		var mu sync.Mutex
		winners := 0
		var wg sync.WaitGroup
		for i := range owners {
			wg.Go(func() {
				_, held, err := s.ClaimDelivery(t.Context(), user, fmt.Sprint("owner-", i), reportT0, at(time.Minute))
				if err != nil {
					t.Errorf("owner %d: ClaimDelivery error = %v", i, err)
				}
				if held {
					mu.Lock()
					winners++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if winners != 1 {
			t.Errorf("%d owners hold the claim, want exactly 1", winners)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := open(t)
		for _, tt := range []struct{ name, user, owner string }{{"NoUser", "", "a"}, {"NoOwner", user, ""}} {
			_, held, err := s.ClaimDelivery(t.Context(), tt.user, tt.owner, reportT0, at(time.Minute))
			assertReportCode(t, "ClaimDelivery("+tt.name+")", err, tokens.EINVALID)
			if held {
				t.Errorf("ClaimDelivery(%s) held", tt.name)
			}
			if err := s.ReleaseDelivery(t.Context(), tt.user, tt.owner); err != nil {
				t.Errorf("ReleaseDelivery(%s) error = %v, want nil", tt.name, err)
			}
		}
		if _, held, err := s.ClaimDelivery(t.Context(), user, "b", reportT0, at(time.Minute)); err != nil || !held {
			t.Errorf("after refused claims, ClaimDelivery = %v, %v; want held", held, err)
		}
	})
}

func testDeliveredMark(t *testing.T, open func(t *testing.T) reports.Store) {
	at := func(d time.Duration) time.Time { return reportT0.Add(d) }
	// claim takes user's claim for owner at now and returns the mark.
	claim := func(t *testing.T, s reports.Store, user, owner string, now time.Duration) int64 {
		t.Helper()
		mark, held, err := s.ClaimDelivery(t.Context(), user, owner, at(now), at(now+time.Minute))
		if err != nil || !held {
			t.Fatalf("ClaimDelivery(%s, %s) = %v, %v; want held", user, owner, held, err)
		}
		return mark
	}

	t.Run("None", func(t *testing.T) {
		s := openWith(t, open, NewReport("m1", "u", reportT0))
		if got := claim(t, s, "u", "a", 0); got != 0 {
			t.Errorf("mark of a user never delivered = %d, want 0", got)
		}
	})

	t.Run("RaisedByDelivered", func(t *testing.T) {
		m1, m2, m3 := NewReport("m1", "u", reportT0), NewReport("m2", "u", reportT0), NewReport("m3", "u", reportT0)
		s := openWith(t, open, m1, m2, m3)
		mustFinish(t, s, m2, reports.StateDelivered, reportT0)
		if got := claim(t, s, "u", "a", 0); got != m2.Seq {
			t.Errorf("mark = %d, want m2's Seq %d", got, m2.Seq)
		}
		// Other end states and older deliveries leave it.
		mustFinish(t, s, m3, reports.StateFailed, reportT0)
		mustFinish(t, s, m1, reports.StateDelivered, reportT0)
		if got := claim(t, s, "u", "a", time.Second); got != m2.Seq {
			t.Errorf("mark after m3 FAILED and m1 DELIVERED = %d, want m2's Seq %d", got, m2.Seq)
		}
	})

	t.Run("OutlivesClaimAndReport", func(t *testing.T) {
		m1 := NewReport("m1", "u", reportT0)
		s := openWith(t, open, m1)
		claim(t, s, "u", "a", 0)
		mustFinish(t, s, m1, reports.StateDelivered, reportT0)
		if err := s.ReleaseDelivery(t.Context(), "u", "a"); err != nil {
			t.Fatal(err)
		}
		if got := claim(t, s, "u", "b", time.Second); got != m1.Seq {
			t.Errorf("mark after release = %d, want %d", got, m1.Seq)
		}
		if _, err := s.DeleteFinishedReports(t.Context(), reportT0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// b's claim runs out; c takes over and sees the mark.
		if got := claim(t, s, "u", "c", 2*time.Minute); got != m1.Seq {
			t.Errorf("mark after the claim ran out and the report was removed = %d, want %d", got, m1.Seq)
		}
	})

	t.Run("NotHeld", func(t *testing.T) {
		m1 := NewReport("m1", "u", reportT0)
		s := openWith(t, open, m1)
		claim(t, s, "u", "a", 0)
		mustFinish(t, s, m1, reports.StateDelivered, reportT0)
		if got, held, err := s.ClaimDelivery(t.Context(), "u", "b", at(time.Second), at(time.Minute)); err != nil || held || got != 0 {
			t.Errorf("ClaimDelivery by another owner = %d, %v, %v; want 0, false, nil", got, held, err)
		}
	})

	t.Run("SeparateUsers", func(t *testing.T) {
		m1 := NewReport("m1", "u", reportT0)
		s := openWith(t, open, m1)
		mustFinish(t, s, m1, reports.StateDelivered, reportT0)
		if got := claim(t, s, "u#", "a", 0); got != 0 {
			t.Errorf("mark of another user = %d, want 0", got)
		}
	})
}

func testLanePendingReports(t *testing.T, open func(t *testing.T) reports.Store) {
	t.Run("BySeq", func(t *testing.T) {
		a1, a2, a3, b1 := NewReport("a1", "a", reportT0), NewReport("a2", "a", reportT0), NewReport("a3", "a", reportT0), NewReport("b1", "b", reportT0)
		a3.NextAttemptAt = reportT0.Add(time.Hour) // not due: listed all the same
		s := openWith(t, open, a1, a2, b1, a3)
		user, err := s.LanePendingReports(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]*reports.Report{a1, a2, a3}, user); diff != "" {
			t.Errorf("user a's pending reports differ (-want +got):\n%s", diff)
		}
	})

	t.Run("None", func(t *testing.T) {
		b1 := NewReport("b1", "b", reportT0)
		s := openWith(t, open, b1, NewReport("c1", "c", reportT0))
		mustFinish(t, s, b1, reports.StateDelivered, reportT0)
		for _, user := range []string{"b", "nobody", "", "c\x00"} {
			got, err := s.LanePendingReports(t.Context(), user)
			if err != nil || len(got) != 0 {
				t.Errorf("LanePendingReports(%q) = %v, %v; want none", user, ids(got), err)
			}
		}
	})
}

func testDeleteFinishedReports(t *testing.T, open func(t *testing.T) reports.Store) {
	t.Run("Before", func(t *testing.T) {
		old, recent, pending := NewReport("old", "u", reportT0), NewReport("recent", "u", reportT0), NewReport("pending", "u", reportT0)
		s := openWith(t, open, old, recent, pending)
		for r, at := range map[*reports.Report]time.Time{old: reportT0, recent: reportT0.Add(48 * time.Hour)} {
			mustFinish(t, s, r, reports.StateFailed, at)
		}
		if n, err := s.DeleteFinishedReports(t.Context(), reportT0); err != nil || n != 0 {
			t.Errorf("DeleteFinishedReports(the finish time) = %d, %v; want 0: only earlier ones go", n, err)
		}
		n, err := s.DeleteFinishedReports(t.Context(), reportT0.Add(24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("DeleteFinishedReports = %d, %v; want 1", n, err)
		}
		if _, err := s.GetReport(t.Context(), "old"); !errors.Is(err, reports.ErrReportNotFound) {
			t.Errorf("old report still there: %v", err)
		}
		assertStoredReport(t, s, recent)
		assertStoredReport(t, s, pending)
	})

	t.Run("ZeroTime", func(t *testing.T) {
		r := NewReport("m1", "u", reportT0)
		s := openWith(t, open, r)
		mustFinish(t, s, r, reports.StateDelivered, reportT0)
		if n, err := s.DeleteFinishedReports(t.Context(), time.Time{}); err != nil || n != 0 {
			t.Errorf("DeleteFinishedReports(zero time) = %d, %v; want 0", n, err)
		}
		assertStoredReport(t, s, r)
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

// openWith returns a new store from open that holds rs, created in turn.
func openWith(t *testing.T, open func(t *testing.T) reports.Store, rs ...*reports.Report) reports.Store {
	t.Helper()
	s := open(t)
	for _, r := range rs {
		mustCreate(t, s, r)
	}
	return s
}

func mustCreate(tb testing.TB, s reports.Store, r *reports.Report) {
	tb.Helper()
	if _, created, err := s.CreateReport(tb.Context(), r); err != nil || !created {
		tb.Fatalf("CreateReport(%s): created %v, err %v", r.MessageID, created, err)
	}
}

func mustPutReport(tb testing.TB, s reports.Store, r *reports.Report) {
	tb.Helper()
	if err := s.PutReport(tb.Context(), r); err != nil {
		tb.Fatalf("PutReport(%s) error = %v", r.MessageID, err)
	}
}

// mustFinish moves the stored r to the end state state, finished at at.
func mustFinish(tb testing.TB, s reports.Store, r *reports.Report, state reports.State, at time.Time) {
	tb.Helper()
	r.State, r.FinishedAt = state, at
	mustPutReport(tb, s, r)
}

func mustGetReport(tb testing.TB, s reports.Store, messageID string) *reports.Report {
	tb.Helper()
	r, err := s.GetReport(tb.Context(), messageID)
	if err != nil {
		tb.Fatalf("GetReport(%s) error = %v", messageID, err)
	}
	return r
}

// assertStoredReport fails the test unless the store holds want, field by
// field; times are compared as instants.
func assertStoredReport(tb testing.TB, s reports.Store, want *reports.Report) {
	tb.Helper()
	if diff := cmp.Diff(want, mustGetReport(tb, s, want.MessageID)); diff != "" {
		tb.Errorf("stored report %s differs (-want +got):\n%s", want.MessageID, diff)
	}
}

// assertDue fails the test unless DueReports(now, limit) returns the reports
// with ids want, in any order.
func assertDue(tb testing.TB, s reports.Store, now time.Time, limit int, want ...string) {
	tb.Helper()
	due, err := s.DueReports(tb.Context(), now, limit)
	if err != nil {
		tb.Fatalf("DueReports(%v, %d) error = %v", now, limit, err)
	}
	wantIDs := map[string]bool{}
	for _, id := range want {
		wantIDs[id] = true
	}
	if diff := cmp.Diff(wantIDs, ids(due)); diff != "" || len(due) != len(want) {
		tb.Errorf("DueReports(%v, %d) = %d reports, ids differ (-want +got):\n%s", now, limit, len(due), diff)
	}
}

// assertReportCode fails the test unless err has code want.
func assertReportCode(tb testing.TB, call string, err error, want tokens.Code) {
	tb.Helper()
	if got := tokens.ErrorCode(err); got != want {
		tb.Errorf("%s error = %v (code %q), want code %q", call, err, got, want)
	}
}

func ids(rs []*reports.Report) map[string]bool {
	m := map[string]bool{}
	for _, r := range rs {
		m[r.MessageID] = true
	}
	return m
}

// NewAlexaEvent returns a pending Alexa event delivery of userID in skillID,
// submitted and due at at.
func NewAlexaEvent(messageID, skillID, userID string, at time.Time) *reports.Report {
	return &reports.Report{
		MessageID: messageID, UserID: userID, SkillID: skillID, Kind: reports.KindAlexaEvent,
		State: reports.StatePending, SubmittedAt: at, NextAttemptAt: at,
		Message: []byte(`{"event":{"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"` + messageID +
			`","payloadVersion":"3"},"endpoint":{"endpointId":"thermostat-1"},"payload":{}},"context":{}}`),
	}
}

// testLanes checks the outbox's lanes: a delivery's kind, skill and message
// round-trip; each kind, skill and user is a lane of its own, with its own
// claim and delivered mark; and a lane of Alexa events offers its oldest
// pending event, where a lane of profile reports offers its newest.
func testLanes(t *testing.T, open func(t *testing.T) reports.Store) {
	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		e := NewAlexaEvent("e1", "home", "u", reportT0)
		e.Message = append(e.Message, 0x00, 0xff) // kept byte for byte, whatever it holds
		mustCreate(t, s, e)
		assertStoredReport(t, s, e)
		r := NewReport("r1", "u", reportT0)
		r.SkillID, r.Kind = "baby", reports.KindProfileReport
		mustCreate(t, s, r)
		assertStoredReport(t, s, r)
		e.Attempts, e.LastError = 1, "Alexa answered 503"
		mustPutReport(t, s, e)
		assertStoredReport(t, s, e)
	})

	t.Run("UnknownKind", func(t *testing.T) {
		s := open(t)
		e := NewAlexaEvent("e1", "home", "u", reportT0)
		e.Kind = "fax"
		_, _, err := s.CreateReport(t.Context(), e)
		assertReportCode(t, "CreateReport(kind fax)", err, tokens.EINVALID)
	})

	t.Run("OldestEventFirst", func(t *testing.T) {
		s := openWith(t, open,
			NewAlexaEvent("e1", "home", "u", reportT0), NewAlexaEvent("e2", "home", "u", reportT0),
			NewAlexaEvent("e3", "home", "u", reportT0))
		assertDue(t, s, reportT0, 100, "e1")
		e1 := mustGetReport(t, s, "e1")
		mustFinish(t, s, e1, reports.StateDelivered, reportT0)
		assertDue(t, s, reportT0, 100, "e2")
		// The oldest waits for its retry: the lane takes no place, and no later
		// event overtakes it.
		e2 := mustGetReport(t, s, "e2")
		e2.NextAttemptAt = reportT0.Add(time.Minute)
		mustPutReport(t, s, e2)
		assertDue(t, s, reportT0, 100)
		assertDue(t, s, reportT0.Add(time.Minute), 100, "e2")
	})

	t.Run("LanesApart", func(t *testing.T) {
		// One user: profile reports of the default skill and of baby, and
		// Alexa events of home and of the default skill: four lanes.
		r1, r2 := NewReport("r1", "u", reportT0), NewReport("r2", "u", reportT0)
		b1 := NewReport("b1", "u", reportT0)
		b1.SkillID, b1.Kind = "baby", reports.KindProfileReport
		s := openWith(t, open, r1, r2, b1,
			NewAlexaEvent("e1", "home", "u", reportT0), NewAlexaEvent("e2", "home", "u", reportT0),
			NewAlexaEvent("d1", tokens.DefaultSkillID, "u", reportT0))
		assertDue(t, s, reportT0, 100, "r2", "b1", "e1", "d1")

		pending, err := s.LanePendingReports(t.Context(), reports.Lane(reports.KindAlexaEvent, "home", "u"))
		if err != nil {
			t.Fatalf("LanePendingReports error = %v", err)
		}
		if diff := cmp.Diff([]string{"e1", "e2"}, messageIDs(pending)); diff != "" {
			t.Errorf("LanePendingReports(home's events of u) (-want +got):\n%s", diff)
		}
		pending, err = s.LanePendingReports(t.Context(), "u")
		if err != nil {
			t.Fatalf("LanePendingReports error = %v", err)
		}
		if diff := cmp.Diff([]string{"r1", "r2"}, messageIDs(pending)); diff != "" {
			t.Errorf("LanePendingReports(u) (-want +got):\n%s", diff)
		}
	})

	t.Run("ClaimsAndMarksApart", func(t *testing.T) {
		s := openWith(t, open, NewReport("r1", "u", reportT0), NewAlexaEvent("e1", "home", "u", reportT0))
		events := reports.Lane(reports.KindAlexaEvent, "home", "u")
		for lane, owner := range map[string]string{"u": "owner-a", events: "owner-b"} {
			if _, held, err := s.ClaimDelivery(t.Context(), lane, owner, reportT0, reportT0.Add(time.Minute)); err != nil || !held {
				t.Errorf("ClaimDelivery(%q, %s) = %v, %v; want held: lanes are claimed apart", lane, owner, held, err)
			}
		}
		r1 := mustGetReport(t, s, "r1")
		mustFinish(t, s, r1, reports.StateDelivered, reportT0)
		if mark, held, err := s.ClaimDelivery(t.Context(), events, "owner-b", reportT0, reportT0.Add(time.Minute)); err != nil || !held || mark != 0 {
			t.Errorf("ClaimDelivery(events of u) = mark %d, %v, %v; want 0, true, nil: a lane's mark is its own", mark, held, err)
		}
	})
}

// messageIDs returns the message ids of rs, in order.
func messageIDs(rs []*reports.Report) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.MessageID)
	}
	return out
}
