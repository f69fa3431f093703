package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ tokens.EventStore = (*Store)(nil)

// DefaultEventRetention is how long events are kept when
// Options.EventRetention is zero; their time to live is the retention plus
// eventTTLMargin after they occurred.
const DefaultEventRetention = 2160 * time.Hour

// eventTTLMargin is how much longer than the retention an event's time to
// live is: DeleteEventsBefore removes events on time, the time to live is the
// backstop.
const eventTTLMargin = 7 * 24 * time.Hour

// eventItem is how a tokens.Event is kept (see the package documentation):
// under its user, by time, and in the index under its type.
type eventItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	GSI1PK     string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK     string `dynamodbav:"gsi1sk,omitempty"`
	Format     int    `dynamodbav:"format"`
	ID         string `dynamodbav:"id"`
	Type       string `dynamodbav:"type"`
	OccurredAt int64  `dynamodbav:"occurred_at"` // Unix nanoseconds
	UserID     string `dynamodbav:"user_id"`
	SkillID    string `dynamodbav:"skill_id,omitempty"`
	Actor      string `dynamodbav:"actor"`
	Data       string `dynamodbav:"data,omitempty"` // JSON
	Notify     bool   `dynamodbav:"notify,omitempty"`
	TTL        int64  `dynamodbav:"ttl"`
}

// eventOrder is an event's place in time: its OccurredAt in Unix nanoseconds
// as 20 digits, '#', its id; sort keys of events end with it, and cursors are
// it in base64.
func eventOrder(at time.Time, id string) string {
	return sortable(at.UnixNano()) + "#" + id
}

// eventCursor matches a decoded cursor.
var eventCursor = regexp.MustCompile(`^[0-9]{20}#.+$`)

func encodeEventCursor(order string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(order))
}

func decodeEventCursor(cursor string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !eventCursor.Match(b) || len(b) > maxSortKey-len(skEvent) {
		return "", tokens.Errorf(tokens.EINVALID, "page token is not one of this store's")
	}
	return string(b), nil
}

// encodeEvent returns the item of e.
func (s *Store) encodeEvent(e *tokens.Event) (eventItem, error) {
	rec := eventItem{
		PK: pkUser + e.UserID, SK: skEvent + eventOrder(e.OccurredAt, e.ID),
		GSI1PK: gsiEvents + string(e.Type), GSI1SK: eventOrder(e.OccurredAt, e.ID),
		Format: recordFormat, ID: e.ID, Type: string(e.Type), OccurredAt: e.OccurredAt.UnixNano(),
		UserID: e.UserID, SkillID: e.SkillID, Actor: e.Actor, Notify: e.Notify,
		TTL: e.OccurredAt.Add(s.eventRetention + eventTTLMargin).Unix(),
	}
	if e.Data != nil {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return eventItem{}, fmt.Errorf("dynamo: encode event %q: %w", e.ID, err)
		}
		rec.Data = string(b)
	}
	return rec, nil
}

// decodeEvent decodes an event item (or the event part of a webhook item).
func decodeEvent(item map[string]types.AttributeValue) (tokens.Event, error) {
	var rec eventItem
	if err := unmarshal(item, &rec); err != nil {
		return tokens.Event{}, fmt.Errorf("dynamo: decode event: %w: %w", errCorrupt, err)
	}
	if rec.Format != recordFormat || rec.ID == "" {
		return tokens.Event{}, fmt.Errorf("dynamo: decode event %q: format %d: %w", rec.ID, rec.Format, errCorrupt)
	}
	e := tokens.Event{
		ID: rec.ID, Type: tokens.EventType(rec.Type), OccurredAt: time.Unix(0, rec.OccurredAt).UTC(),
		UserID: rec.UserID, SkillID: rec.SkillID, Actor: rec.Actor, Notify: rec.Notify,
	}
	if rec.Data != "" {
		if err := json.Unmarshal([]byte(rec.Data), &e.Data); err != nil {
			return tokens.Event{}, fmt.Errorf("dynamo: decode event %q: data: %w: %w", rec.ID, errCorrupt, err)
		}
	}
	return e, nil
}

// putEvent stores e as an event item, and its PENDING webhook when e.Notify
// is set, each unless it exists already; a webhook it creates counts in the
// webhook backlog.
func (s *Store) putEvent(ctx context.Context, e *tokens.Event) error {
	rec, err := s.encodeEvent(e)
	if err != nil {
		return err
	}
	item, err := marshal("store event", rec)
	if err != nil {
		return err
	}
	absent := expression.AttributeNotExists(expression.Name(AttrPK))
	if _, err := s.put(ctx, "store event", item, absent); err != nil {
		return err
	}
	if !e.Notify {
		return nil
	}
	hook, err := s.encodeWebhook(rec, &events.Webhook{State: events.StatePending}, 1)
	if err != nil {
		return err
	}
	created, err := s.put(ctx, "create webhook", hook, absent)
	if created {
		s.count(ctx, map[string]int{countWebhooks + events.StatePending.String(): 1})
	}
	return err
}

// ListEvents returns a page of events as tokens.EventStore specifies, the
// table's through every view: a user's are the user's events of every
// skill, each with its SkillID. A user's events are one query of the table,
// strongly consistent, newest first (other types filtered out when the
// filter names one too); a type's
// are one query of the index; all events are the newest of each type's query
// merged. The index is eventually consistent: an event written a moment ago
// may be missing there. It returns an EINVALID error for an unknown type or a
// cursor that is not one of this store's, an EUNAVAILABLE error when DynamoDB
// cannot be reached, and an EINTERNAL error when an item is corrupt.
func (s *Store) ListEvents(ctx context.Context, filter tokens.EventFilter, cursor string, limit int) (tokens.EventPage, error) {
	if filter.Type != "" {
		if err := filter.Type.Validate(); err != nil {
			return tokens.EventPage{}, err
		}
	}
	var after string
	if cursor != "" {
		var err error
		if after, err = decodeEventCursor(cursor); err != nil {
			return tokens.EventPage{}, err
		}
	}
	limit = tokens.PageSize(limit)
	var items []map[string]types.AttributeValue
	switch {
	case filter.UserID != "":
		if checkUserID(filter.UserID) != nil {
			return tokens.EventPage{}, nil
		}
		kc := expression.Key(AttrPK).Equal(expression.Value(pkUser + filter.UserID))
		if after == "" {
			kc = kc.And(expression.Key(AttrSK).BeginsWith(skEvent))
		} else {
			kc = kc.And(expression.Key(AttrSK).Between(expression.Value(skEvent), expression.Value(skEvent+after)))
		}
		var f *expression.ConditionBuilder
		if filter.Type != "" {
			c := expression.Name("type").Equal(expression.Value(string(filter.Type)))
			f = &c
		}
		var err error
		if items, err = s.queryBack(ctx, "list events of a user", nil, kc, f, limit+2); err != nil {
			return tokens.EventPage{}, err
		}
		items = slices.DeleteFunc(items, func(item map[string]types.AttributeValue) bool {
			sk, _ := item[AttrSK].(*types.AttributeValueMemberS)
			return after != "" && sk != nil && sk.Value == skEvent+after
		})
	default:
		typs := tokens.EventTypes
		if filter.Type != "" {
			typs = []tokens.EventType{filter.Type}
		}
		for _, typ := range typs {
			kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiEvents + string(typ)))
			if after != "" {
				kc = kc.And(expression.Key(AttrGSI1SK).LessThan(expression.Value(after)))
			}
			got, err := s.queryBack(ctx, "list events", aws.String(IndexGSI1), kc, nil, limit+1)
			if err != nil {
				return tokens.EventPage{}, err
			}
			items = append(items, got...)
		}
		slices.SortFunc(items, func(a, b map[string]types.AttributeValue) int {
			return strings.Compare(gsi1sk(b), gsi1sk(a))
		})
	}
	var page tokens.EventPage
	for _, item := range items {
		if len(page.Events) == limit {
			last := page.Events[limit-1]
			page.Next = encodeEventCursor(eventOrder(last.OccurredAt, last.ID))
			break
		}
		e, err := decodeEvent(item)
		if err != nil {
			return tokens.EventPage{}, err
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}

// gsi1sk returns the index sort key of item, "" when it has none.
func gsi1sk(item map[string]types.AttributeValue) string {
	if v, ok := item[AttrGSI1SK].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// queryBack returns up to limit items that match kc (and filter, when not
// nil) in descending key order, of the table or, when index is set, of that
// index, following DynamoDB's pages.
func (s *Store) queryBack(ctx context.Context, op string, index *string, kc expression.KeyConditionBuilder, filter *expression.ConditionBuilder, limit int) ([]map[string]types.AttributeValue, error) {
	b := expression.NewBuilder().WithKeyCondition(kc)
	if filter != nil {
		b = b.WithFilter(*filter)
	}
	expr, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dynamo: %s: build query: %w", op, err)
	}
	in := &dynamodb.QueryInput{
		TableName: s.table, IndexName: index,
		KeyConditionExpression: expr.KeyCondition(), FilterExpression: expr.Filter(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ScanIndexForward: aws.Bool(false), ConsistentRead: aws.Bool(index == nil),
	}
	var items []map[string]types.AttributeValue
	for {
		if filter == nil {
			in.Limit = aws.Int32(int32(limit - len(items)))
		}
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, s.fail(op, err)
		}
		items = append(items, out.Items...)
		if len(items) >= limit {
			return items[:limit], nil
		}
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// DeleteEventsBefore removes the events that occurred before before, as
// tokens.EventStore specifies: it finds them in the index, type by type, and
// removes each event item and its webhook (up to deleteConcurrency at a
// time); a webhook still PENDING leaves the backlog. Events that DynamoDB's
// time to live removed first are not counted. When it fails, the events
// removed until then stay removed.
func (s *Store) DeleteEventsBefore(ctx context.Context, before time.Time) (int, error) {
	end := expression.Value(sortable(before.UnixNano()))
	var items []map[string]types.AttributeValue
	for _, typ := range tokens.EventTypes {
		kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiEvents + string(typ))).And(expression.Key(AttrGSI1SK).LessThan(end))
		got, err := s.query(ctx, "delete events", kc, nil, 0)
		if err != nil {
			return 0, err
		}
		items = append(items, got...)
	}
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(deleteConcurrency)
	exists := expression.AttributeExists(expression.Name(AttrPK))
	for _, item := range items {
		g.Go(func() error {
			e, err := decodeEvent(item)
			if err != nil {
				return err
			}
			removed, err := s.remove(gctx, "delete event", pkUser+e.UserID, skEvent+eventOrder(e.OccurredAt, e.ID), exists)
			if err != nil {
				return err
			}
			if removed {
				n.Add(1)
			}
			if !e.Notify {
				return nil
			}
			old, err := s.removeOld(gctx, "delete webhook", pkUser+e.UserID, skWebhook+eventOrder(e.OccurredAt, e.ID))
			if err == nil && stateOf(old) == events.StatePending.String() {
				s.count(gctx, map[string]int{countWebhooks + events.StatePending.String(): -1})
			}
			return err
		})
	}
	err := g.Wait()
	return int(n.Load()), err
}

// removeOld deletes the item pk, sk and returns what it held (nil when there
// was none).
func (s *Store) removeOld(ctx context.Context, op, pk, sk string) (map[string]types.AttributeValue, error) {
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table, Key: key(pk, sk), ReturnValues: types.ReturnValueAllOld,
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out.Attributes, nil
}
