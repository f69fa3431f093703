package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Attributes of an item's outbox: the events of the item's last change that
// are not yet stored as event items (see the package documentation, "Events
// with their changes").
const (
	attrOutbox   = "outbox"    // String: the events, JSON
	attrOutboxAt = "outbox_at" // Number: Unix nanoseconds when the change was written
	attrDeleting = "deleting"  // Boolean: the change deletes the item
)

// outboxGrace is how old an outbox must be before a reader (GetLink,
// ListLinks, GetReport) or DeleteFinishedReports flushes it: younger ones are
// being flushed by their writer. Writers that find one in their way flush it
// at once.
const outboxGrace = 10 * time.Second

// maxEventIDLen is the length in bytes of the longest event id the store
// keeps: ids are parts of keys.
const maxEventIDLen = 200

// indexLag is how far behind the table's writes its index IndexGSI1 is
// taken to be. DynamoDB updates a global secondary index asynchronously,
// within a fraction of a second under normal conditions; a second covers that
// with margin, and is what a user's ordered deliveries wait, at most, on top
// of their first look.
const indexLag = time.Second

// IndexLag returns how far behind its writes the store's listings of pending
// reports and webhooks (DueReports, LanePendingReports, DueWebhooks) may be:
// they read the eventually consistent index IndexGSI1. Deliverers hold a
// user's oldest item back that long after they first saw it listed, so that
// an older one not listed yet is not overtaken (reports.Deliverer.IndexLag,
// events.Deliverer.IndexLag).
func (s *Store) IndexLag() time.Duration { return indexLag }

// outboxEvent is how an event is kept in an outbox and in event items' data.
type outboxEvent struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt int64          `json:"occurred_at"`
	UserID     string         `json:"user_id"`
	SkillID    string         `json:"skill_id,omitempty"`
	Actor      string         `json:"actor"`
	Data       map[string]any `json:"data,omitempty"`
	Notify     bool           `json:"notify,omitempty"`
}

// outbox is an item's outbox, decoded.
type outbox struct {
	Events   string `dynamodbav:"outbox"`
	At       int64  `dynamodbav:"outbox_at"`
	Deleting bool   `dynamodbav:"deleting"`
}

// checkEvents returns an EINVALID error when tokens.ValidateEvents refuses
// evs, or an event's user id or id cannot be part of a key.
func checkEvents(evs []tokens.Event) error {
	if err := tokens.ValidateEvents(evs); err != nil {
		return err
	}
	for i := range evs {
		if err := checkUserID(evs[i].UserID); err != nil {
			return err
		}
		if len(evs[i].ID) > maxEventIDLen || !utf8.ValidString(evs[i].ID) {
			return tokens.Errorf(tokens.EINVALID, "event id longer than %d bytes or not UTF-8", maxEventIDLen)
		}
	}
	return nil
}

// withOutbox adds evs to item as its outbox, written at at, and reports
// whether there were any.
func withOutbox(item map[string]types.AttributeValue, evs []tokens.Event, at time.Time) (outbox, error) {
	if len(evs) == 0 {
		return outbox{}, nil
	}
	out := make([]outboxEvent, len(evs))
	for i, e := range evs {
		out[i] = outboxEvent{
			ID: e.ID, Type: string(e.Type), OccurredAt: e.OccurredAt.UnixNano(), UserID: e.UserID,
			SkillID: e.SkillID, Actor: e.Actor, Data: e.Data, Notify: e.Notify,
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return outbox{}, fmt.Errorf("dynamo: encode events: %w", err)
	}
	ob := outbox{Events: string(b), At: at.UnixNano()}
	item[attrOutbox] = &types.AttributeValueMemberS{Value: ob.Events}
	item[attrOutboxAt] = &types.AttributeValueMemberN{Value: fmt.Sprint(ob.At)}
	return ob, nil
}

// outboxOf returns the outbox of item, empty when it has none.
func outboxOf(item map[string]types.AttributeValue) (outbox, error) {
	var ob outbox
	if item == nil || item[attrOutbox] == nil {
		return ob, nil
	}
	if err := unmarshal(item, &ob); err != nil {
		return outbox{}, fmt.Errorf("dynamo: decode outbox: %w: %w", errCorrupt, err)
	}
	return ob, nil
}

// events decodes the outbox's events.
func (ob outbox) events() ([]tokens.Event, error) {
	var in []outboxEvent
	if err := json.Unmarshal([]byte(ob.Events), &in); err != nil {
		return nil, fmt.Errorf("dynamo: decode outbox: %w: %w", errCorrupt, err)
	}
	evs := make([]tokens.Event, len(in))
	for i, e := range in {
		evs[i] = tokens.Event{
			ID: e.ID, Type: tokens.EventType(e.Type), OccurredAt: time.Unix(0, e.OccurredAt).UTC(), UserID: e.UserID,
			SkillID: e.SkillID, Actor: e.Actor, Data: e.Data, Notify: e.Notify,
		}
	}
	return evs, nil
}

// flush stores the events of ob, the outbox of the item pk, sk, as event
// items (and the webhooks of those to send), then ends the outbox: it
// removes the item when ob is a deletion's, else the outbox's attributes;
// both on the condition that the item still holds this outbox. Every step
// may run twice (a writer and a reader flushing together, or a flush that
// failed half way): event items and webhooks are created only when absent.
func (s *Store) flush(ctx context.Context, pk, sk string, ob outbox) error {
	if ob.Events == "" {
		return nil
	}
	evs, err := ob.events()
	if err != nil {
		return err
	}
	for i := range evs {
		if err := s.putEvent(ctx, &evs[i]); err != nil {
			return err
		}
	}
	same := expression.Name(attrOutboxAt).Equal(expression.Value(ob.At))
	if ob.Deleting {
		_, err := s.remove(ctx, "delete link", pk, sk, same)
		return err
	}
	expr, err := expression.NewBuilder().WithCondition(same).
		WithUpdate(expression.Remove(expression.Name(attrOutbox)).Remove(expression.Name(attrOutboxAt))).Build()
	if err != nil {
		return fmt.Errorf("dynamo: end outbox: build update: %w", err)
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table, Key: key(pk, sk),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err != nil && !conditionFailed(err) {
		return s.fail("end outbox", err)
	}
	return nil
}

// recover reads the item pk, sk and flushes its outbox if it has one. It
// reports whether the item exists and whether it had an outbox.
func (s *Store) recover(ctx context.Context, pk, sk string) (exists, flushed bool, err error) {
	item, err := s.get(ctx, "read outbox", pk, sk)
	if err != nil || item == nil {
		return false, false, err
	}
	ob, err := outboxOf(item)
	if err != nil || ob.Events == "" {
		return true, false, err
	}
	return true, true, s.flush(ctx, pk, sk, ob)
}

// flushStale flushes the outbox of item, read from pk, sk, when it is older
// than outboxGrace; it is how readers finish the changes of a writer that
// stopped half way. Its errors are left for the next reader.
func (s *Store) flushStale(ctx context.Context, pk, sk string, item map[string]types.AttributeValue) {
	ob, err := outboxOf(item)
	if err != nil || !s.stale(ob) {
		return
	}
	_ = s.flush(ctx, pk, sk, ob)
}

// stale reports whether ob holds events and is older than outboxGrace by the
// store's clock: its writer has stopped or failed to flush it.
func (s *Store) stale(ob outbox) bool {
	return ob.Events != "" && s.now().Sub(time.Unix(0, ob.At)) >= outboxGrace
}

// putOld writes item when cond holds and returns the item it replaced (nil
// when none); it reports false when cond did not hold.
func (s *Store) putOld(ctx context.Context, op string, item map[string]types.AttributeValue, cond expression.ConditionBuilder) (map[string]types.AttributeValue, bool, error) {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: %s: build condition: %w", op, err)
	}
	out, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: s.table, Item: item,
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllOld,
	})
	if held, err := s.held(op, err); !held {
		return nil, false, err
	}
	return out.Attributes, true, nil
}

// stateOf returns the "state" attribute of item, "" when it has none.
func stateOf(item map[string]types.AttributeValue) string {
	if v, ok := item[attrState].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
