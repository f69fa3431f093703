package bolt_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/bolt"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestStore_CorruptReport(t *testing.T) {
	const valid = `{"format":1,"message_id":"m1","user_id":"u1","profiles":[],"seq":1,"state":"FAILED",` +
		`"attempts":1,"submitted_at":"2026-11-24T12:00:00Z","finished_at":"2026-11-24T12:00:00Z","version":1}`
	for _, tt := range []struct {
		name   string
		record string
		want   tokens.Code // "" for a record that decodes
	}{
		{"Valid", valid, ""},
		{"Empty", "", tokens.EINTERNAL},
		{"NotJSON", "\x02m1", tokens.EINTERNAL},
		{"UnknownFormat", strings.Replace(valid, `"format":1`, `"format":9`, 1), tokens.EINTERNAL},
		{"UnknownState", strings.Replace(valid, `"FAILED"`, `"HAPPY"`, 1), tokens.EINTERNAL},
		{"StateNumber", strings.Replace(valid, `"FAILED"`, `"3"`, 1), tokens.EINTERNAL},
		{"BadTime", strings.Replace(valid, `"submitted_at":"2026-11-24T12:00:00Z"`, `"submitted_at":"yesterday"`, 1), tokens.EINTERNAL},
		{"LanesFormat", strings.Replace(valid, `"format":1,`, `"format":2,"skill_id":"home","kind":"alexa_event","message":"e30=",`, 1), ""},
		{"UnknownKind", strings.Replace(valid, `"format":1,`, `"format":2,"kind":"fax",`, 1), tokens.EINTERNAL},
		{"MessageNotBase64", strings.Replace(valid, `"format":1,`, `"format":2,"message":"{}",`, 1), tokens.EINTERNAL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openWithReport(t, "m1", tt.record)
			if _, err := s.GetReport(t.Context(), "m1"); tokens.ErrorCode(err) != tt.want {
				t.Errorf("GetReport error = %v (code %q), want code %q", err, tokens.ErrorCode(err), tt.want)
			}
			_, err := s.DeleteFinishedReports(t.Context(), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
			if tokens.ErrorCode(err) != tt.want {
				t.Errorf("DeleteFinishedReports error = %v (code %q), want code %q", err, tokens.ErrorCode(err), tt.want)
			}
		})
	}
}

// openWithReport returns a new store whose reports bucket holds record under
// messageID, written past the store.
func openWithReport(tb testing.TB, messageID, record string) *bolt.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "broker.db")
	if err := mustOpen(tb, path).Close(); err != nil {
		tb.Fatal(err)
	}
	writeRaw(tb, path, "reports", messageID, record)
	return mustOpen(tb, path)
}

// TestStore_ReportRecord checks how a report's lane is kept: the record of a
// report that code older than skills and kinds would take for the default
// skill's profile report has format 2, which that code refuses; the others
// keep format 1. An empty message is kept apart from none.
func TestStore_ReportRecord(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	baby := storetest.NewReport("baby", "u1", at)
	baby.SkillID = "baby"
	named := storetest.NewReport("named", "u1", at)
	named.SkillID, named.Kind = tokens.DefaultSkillID, reports.KindProfileReport
	empty := storetest.NewAlexaEvent("empty", tokens.DefaultSkillID, "u1", at)
	empty.Message = []byte{}
	for _, tt := range []struct {
		r          *reports.Report
		wantFormat int
	}{
		{storetest.NewReport("plain", "u1", at), 1},
		{named, 1},
		{baby, 2},
		{storetest.NewAlexaEvent("event", tokens.DefaultSkillID, "u1", at), 2},
		{empty, 2},
	} {
		t.Run(tt.r.MessageID, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "broker.db")
			s := mustOpen(t, path)
			if _, _, err := s.CreateReport(t.Context(), tt.r); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetReport(t.Context(), tt.r.MessageID)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Message == nil) != (tt.r.Message == nil) || string(got.Message) != string(tt.r.Message) {
				t.Errorf("Message = %#v, want %#v", got.Message, tt.r.Message)
			}
			if got.SkillID != tt.r.SkillID || got.Kind != tt.r.Kind {
				t.Errorf("SkillID, Kind = %q, %q; want %q, %q", got.SkillID, got.Kind, tt.r.SkillID, tt.r.Kind)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := readReportFormat(t, path, tt.r.MessageID); got != tt.wantFormat {
				t.Errorf("record format = %d, want %d", got, tt.wantFormat)
			}
		})
	}
}

// readReportFormat returns the "format" of the record of messageID in the
// bbolt file at path, read past the store.
func readReportFormat(tb testing.TB, path, messageID string) int {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var rec struct {
		Format int `json:"format"`
	}
	err = db.View(func(tx *bbolt.Tx) error {
		return json.Unmarshal(tx.Bucket([]byte("reports")).Get([]byte(messageID)), &rec)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return rec.Format
}

// TestStore_CreateReportGroups creates reports from many goroutines at once,
// which the group commit writes in shared transactions, among them many
// creations of one message id: every report gets its own Seq, exactly one
// creation of the shared id creates, and every report is in the file once it
// is closed and opened again.
func TestStore_CreateReportGroups(t *testing.T) {
	const writers, each = 32, 8
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "broker.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seqs := map[int64]string{}
	shared := 0
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := storetest.NewReport(fmt.Sprintf("m-%d-%d", w, i), fmt.Sprint("u", w), at)
				if i == each/2 {
					r = storetest.NewReport("shared", fmt.Sprint("u", w), at)
				}
				_, created, err := s.CreateReport(t.Context(), r)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if created {
					if other, ok := seqs[r.Seq]; ok {
						t.Errorf("%s and %s both have Seq %d", other, r.MessageID, r.Seq)
					}
					seqs[r.Seq] = r.MessageID
				}
				if created && r.MessageID == "shared" {
					shared++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if shared != 1 {
		t.Errorf("%d creations of one message id, want 1", shared)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, path)
	for _, id := range seqs {
		if _, err := s.GetReport(t.Context(), id); err != nil {
			t.Errorf("after reopening, GetReport(%s): %v", id, err)
		}
	}
	if got, want := len(seqs), writers*(each-1)+1; got != want {
		t.Errorf("%d reports created, want %d", got, want)
	}
}
