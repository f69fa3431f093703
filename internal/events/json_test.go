package events_test

import (
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestMarshalEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		e    tokens.Event
		want string
	}{
		{
			"Contract",
			tokens.Event{ID: "evt_01JDX7Q0W3G9Z8K2M4N6P8R0T2", Type: tokens.EventRelinkRequired, OccurredAt: at, UserID: "parent-123",
				SkillID: "default", Actor: "broker", Data: map[string]any{"reason": "invalid_grant"}, Notify: true},
			`{"id":"evt_01JDX7Q0W3G9Z8K2M4N6P8R0T2","type":"link.relink_required","occurred_at":"2026-12-01T10:00:00Z","user_id":"parent-123","skill_id":"default","actor":"broker","data":{"reason":"invalid_grant"}}`,
		},
		{
			"LinkedData",
			tokens.Event{ID: "evt_1", Type: tokens.EventLinked, OccurredAt: at.In(time.FixedZone("CET", 3600)), UserID: "u<1>&",
				SkillID: "default", Actor: "alexa", Data: map[string]any{"relinked": false, "region": "EU"}},
			`{"id":"evt_1","type":"link.linked","occurred_at":"2026-12-01T10:00:00Z","user_id":"u<1>&","skill_id":"default","actor":"alexa","data":{"region":"EU","relinked":false}}`,
		},
		{
			"NoData",
			tokens.Event{ID: "evt_2", Type: tokens.EventDeleted, OccurredAt: at.Add(1500 * time.Millisecond), UserID: "u", SkillID: "default", Actor: "ops"},
			`{"id":"evt_2","type":"link.deleted","occurred_at":"2026-12-01T10:00:01.500Z","user_id":"u","skill_id":"default","actor":"ops","data":{}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := events.MarshalEvent(tc.e)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("MarshalEvent =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestFormatTime(t *testing.T) {
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		add  time.Duration
		want string
	}{
		{"Second", 0, "2026-12-01T10:00:00Z"},
		{"Milli", 120 * time.Millisecond, "2026-12-01T10:00:00.120Z"},
		{"Micro", 1200 * time.Microsecond, "2026-12-01T10:00:00.001200Z"},
		{"Nano", 7, "2026-12-01T10:00:00.000000007Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := events.FormatTime(base.Add(tc.add)); got != tc.want {
				t.Fatalf("FormatTime = %q, want %q", got, tc.want)
			}
		})
	}
}
