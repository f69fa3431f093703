package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// eventJSON is an event as the webhook body and the API show it, fields in
// this order.
type eventJSON struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt string         `json:"occurred_at"`
	UserID     string         `json:"user_id"`
	SkillID    string         `json:"skill_id"`
	Actor      string         `json:"actor"`
	Data       map[string]any `json:"data"`
}

// MarshalEvent returns e as the JSON of a webhook's body:
//
//	{"id":"evt_…","type":"link.relink_required","occurred_at":"2026-12-01T10:00:00Z",
//	 "user_id":"parent-123","skill_id":"default","actor":"broker","data":{"reason":"invalid_grant"}}
//
// on one line, without a trailing newline. occurred_at is RFC 3339 in UTC with
// 0, 3, 6 or 9 digits of fraction, as protobuf's JSON writes a Timestamp, so
// that the API's answer shows the same text; data is {} when e has none, and
// its values are written as they are (strings, booleans, numbers). Notify is
// not part of it. It returns an error only when a data value cannot be written
// as JSON.
func MarshalEvent(e tokens.Event) ([]byte, error) {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(eventJSON{
		ID: e.ID, Type: string(e.Type), OccurredAt: FormatTime(e.OccurredAt),
		UserID: e.UserID, SkillID: e.SkillID, Actor: e.Actor, Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("events: encoding event %s: %w", e.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// FormatTime writes t as protobuf's JSON writes a google.protobuf.Timestamp:
// RFC 3339 in UTC, with no fraction when t is a whole second, else with 3, 6
// or 9 digits, the fewest that hold it.
func FormatTime(t time.Time) string {
	t = t.UTC()
	switch ns := t.Nanosecond(); {
	case ns == 0:
		return t.Format("2006-01-02T15:04:05Z")
	case ns%int(time.Millisecond) == 0:
		return t.Format("2006-01-02T15:04:05.000Z")
	case ns%int(time.Microsecond) == 0:
		return t.Format("2006-01-02T15:04:05.000000Z")
	}
	return t.Format("2006-01-02T15:04:05.000000000Z")
}
