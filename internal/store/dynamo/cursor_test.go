package dynamo

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestDecodePendingCursor: a cursor that PendingReports did not give is an
// EINVALID error, never a query DynamoDB refuses (a 500) nor a silent start
// from the first page (a client's endless loop).
func TestDecodePendingCursor(t *testing.T) {
	sk := pendingPrefix("u1") + sortable(42)
	encoded := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, tt := range []struct {
		name   string
		cursor string
		want   pendingCursor // when ok
		ok     bool
	}{
		{"None", "", pendingCursor{}, true},
		{"Given", pendingCursor{SortKey: sk, MessageID: "m1"}.encode(), pendingCursor{SortKey: sk, MessageID: "m1"}, true},
		{"EarlierVersion", encoded(sk), pendingCursor{SortKey: sk}, true},
		{"NotBase64", "***", pendingCursor{}, false},
		{"Null", encoded("null"), pendingCursor{}, false},
		{"EmptyObject", encoded("{}"), pendingCursor{}, false},
		{"NoSortKey", encoded(`{"m":"m1"}`), pendingCursor{}, false},
		{"EmptySortKey", encoded(`{"k":"","m":"m1"}`), pendingCursor{}, false},
		{"NoMessageID", encoded(`{"k":"` + sk + `"}`), pendingCursor{}, false},
		{"ShortSeq", pendingCursor{SortKey: "u1#42", MessageID: "m1"}.encode(), pendingCursor{}, false},
		{"NoLane", pendingCursor{SortKey: "#" + sortable(42), MessageID: "m1"}.encode(), pendingCursor{}, false},
		{"SeqNotDigits", encoded(pendingPrefix("u1") + strings.Repeat("x", 20)), pendingCursor{}, false},
		{"EarlierVersionNotASortKey", encoded("page-2"), pendingCursor{}, false},
		{"TooLong", encoded(strings.Repeat("u", maxSortKey) + "#" + sortable(1)), pendingCursor{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodePendingCursor(tt.cursor)
			switch {
			case tt.ok && (err != nil || got != tt.want):
				t.Errorf("decodePendingCursor = %+v, %v; want %+v", got, err, tt.want)
			case !tt.ok && tokens.ErrorCode(err) != tokens.EINVALID:
				t.Errorf("decodePendingCursor = %+v, %v; want an EINVALID error", got, err)
			}
		})
	}
}
