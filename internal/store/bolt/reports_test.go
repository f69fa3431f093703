package bolt_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/store/bolt"
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
