package dynamo

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var _ events.Store = (*Store)(nil)

// webhookItem is how an events.Webhook is kept: the event's fields, and the
// delivery record. Only a PENDING one is in the index, under WEBHOOKS by its
// escaped user id and the event's order, so that a user's first item there
// is the user's oldest pending webhook.
type webhookItem struct {
	eventItem
	State         string `dynamodbav:"state"`
	Attempts      int    `dynamodbav:"attempts"`
	NextAttemptAt *int64 `dynamodbav:"next_attempt_at,omitempty"`
	LastError     string `dynamodbav:"last_error,omitempty"`
	Version       int64  `dynamodbav:"version"`
}

// encodeWebhook returns the item of w, the webhook of the event rec, with
// version.
func (s *Store) encodeWebhook(rec eventItem, w *events.Webhook, version int64) (map[string]types.AttributeValue, error) {
	order := eventOrder(time.Unix(0, rec.OccurredAt), rec.ID)
	rec.SK, rec.GSI1PK, rec.GSI1SK = skWebhook+order, "", ""
	if w.State == events.StatePending {
		rec.GSI1PK, rec.GSI1SK = gsiWebhooks, pendingPrefix(rec.UserID)+order
	}
	return marshal("put webhook", webhookItem{
		eventItem: rec, State: w.State.String(), Attempts: w.Attempts,
		NextAttemptAt: nanos(w.NextAttemptAt), LastError: w.LastError, Version: version,
	})
}

// decodeWebhook decodes a webhook item.
func decodeWebhook(item map[string]types.AttributeValue) (*events.Webhook, error) {
	e, err := decodeEvent(item)
	if err != nil {
		return nil, err
	}
	var rec webhookItem
	if err := unmarshal(item, &rec); err != nil {
		return nil, fmt.Errorf("dynamo: decode webhook: %w: %w", errCorrupt, err)
	}
	w := &events.Webhook{Event: e, Attempts: rec.Attempts, NextAttemptAt: fromNanos(rec.NextAttemptAt), LastError: rec.LastError, Version: rec.Version}
	if w.State = parseWebhookState(rec.State); w.State == 0 || rec.Version <= 0 {
		return nil, fmt.Errorf("dynamo: decode webhook %q: state %q: %w", e.ID, rec.State, errCorrupt)
	}
	return w, nil
}

// parseWebhookState is the inverse of events.State.String; 0 for none.
func parseWebhookState(name string) events.State {
	for _, st := range []events.State{events.StatePending, events.StateDelivered, events.StateGivenUp} {
		if st.String() == name {
			return st
		}
	}
	return 0
}

// pendingHeads returns the first item of each user in the index's WEBHOOKS
// partition: each user's oldest pending webhook as the eventually consistent
// index shows it. It reads duePage items at a time and starts each next page
// after the last user of the page, so a user's backlog costs at most one
// page.
func (s *Store) pendingHeads(ctx context.Context, op string) ([]*events.Webhook, error) {
	var heads []*events.Webhook
	after := ""
	for {
		kc := expression.Key(AttrGSI1PK).Equal(expression.Value(gsiWebhooks))
		if after != "" {
			kc = kc.And(expression.Key(AttrGSI1SK).GreaterThan(expression.Value(after)))
		}
		items, more, err := s.queryPage(ctx, op, kc, duePage, true)
		if err != nil {
			return nil, err
		}
		last := ""
		for _, item := range items {
			w, err := decodeWebhook(item)
			if err != nil {
				return nil, err
			}
			if w.Event.UserID == last {
				continue
			}
			last = w.Event.UserID
			heads = append(heads, w)
		}
		if !more || last == "" {
			return heads, nil
		}
		// Every gsi1sk of the user is its prefix and digits, which sort
		// before ':'.
		after = pendingPrefix(last) + ":"
	}
}

// DueWebhooks returns the oldest pending webhook of each user that is due, as
// events.Store specifies, oldest first. It finds each user's oldest in the
// index (see pendingHeads) and reads it again with a strongly consistent
// read, so that a webhook delivered a moment ago is never answered as
// pending; a user whose head has just left the outbox waits for the next
// call.
func (s *Store) DueWebhooks(ctx context.Context, now time.Time, limit int) ([]*events.Webhook, error) {
	limit = tokens.PageSize(limit)
	heads, err := s.pendingHeads(ctx, "due webhooks")
	if err != nil {
		return nil, err
	}
	sortWebhooks(heads)
	var due []*events.Webhook
	for _, h := range heads {
		if len(due) == limit {
			break
		}
		if h.NextAttemptAt.After(now) {
			continue
		}
		item, err := s.get(ctx, "due webhooks: read", pkUser+h.Event.UserID, skWebhook+eventOrder(h.Event.OccurredAt, h.Event.ID))
		if err != nil {
			return nil, err
		}
		if item == nil {
			continue
		}
		w, err := decodeWebhook(item)
		if err != nil {
			return nil, err
		}
		if w.State == events.StatePending && !w.NextAttemptAt.After(now) {
			due = append(due, w)
		}
	}
	return due, nil
}

// sortWebhooks sorts ws oldest first: by event OccurredAt, then ID.
func sortWebhooks(ws []*events.Webhook) {
	slices.SortFunc(ws, func(a, b *events.Webhook) int {
		return cmp.Or(a.Event.OccurredAt.Compare(b.Event.OccurredAt), cmp.Compare(a.Event.ID, b.Event.ID))
	})
}

// PutWebhook writes w's delivery record as events.Store specifies, in one
// update on the condition that the stored version equals w.Version; a
// webhook written DELIVERED or GIVEN_UP leaves the index and the backlog
// counter. When the condition fails, a consistent read tells a conflict from
// a webhook that is gone. It returns an EINVALID error for an unknown state,
// ErrWebhookNotFound and ErrVersionConflict (wrapped), and an EUNAVAILABLE
// error when DynamoDB cannot be reached.
func (s *Store) PutWebhook(ctx context.Context, w *events.Webhook) error {
	if parseWebhookState(w.State.String()) == 0 {
		return tokens.Errorf(tokens.EINVALID, "webhook state %d is unknown", int(w.State))
	}
	if checkUserID(w.Event.UserID) != nil || checkEvents([]tokens.Event{{ID: w.Event.ID, Type: tokens.EventLinked, OccurredAt: w.Event.OccurredAt, UserID: w.Event.UserID, Actor: "x"}}) != nil {
		return fmt.Errorf("dynamo: put webhook %q: %w", w.Event.ID, events.ErrWebhookNotFound)
	}
	pk, sk := pkUser+w.Event.UserID, skWebhook+eventOrder(w.Event.OccurredAt, w.Event.ID)
	version := w.Version + 1
	upd := expression.Set(expression.Name("state"), expression.Value(w.State.String())).
		Set(expression.Name("attempts"), expression.Value(w.Attempts)).
		Set(expression.Name(attrVersion), expression.Value(version))
	if w.NextAttemptAt.IsZero() {
		upd = upd.Remove(expression.Name(attrNextAttemptAt))
	} else {
		upd = upd.Set(expression.Name(attrNextAttemptAt), expression.Value(w.NextAttemptAt.UnixNano()))
	}
	if w.LastError == "" {
		upd = upd.Remove(expression.Name("last_error"))
	} else {
		upd = upd.Set(expression.Name("last_error"), expression.Value(w.LastError))
	}
	if w.State == events.StatePending {
		upd = upd.Set(expression.Name(AttrGSI1PK), expression.Value(gsiWebhooks)).
			Set(expression.Name(AttrGSI1SK), expression.Value(pendingPrefix(w.Event.UserID)+eventOrder(w.Event.OccurredAt, w.Event.ID)))
	} else {
		upd = upd.Remove(expression.Name(AttrGSI1PK)).Remove(expression.Name(AttrGSI1SK))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).
		WithCondition(expression.Name(attrVersion).Equal(expression.Value(w.Version))).Build()
	if err != nil {
		return fmt.Errorf("dynamo: put webhook: build update: %w", err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table, Key: key(pk, sk),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllOld,
	})
	switch {
	case conditionFailed(err):
		stored, err := s.get(ctx, "put webhook: read stored", pk, sk)
		switch {
		case err != nil:
			return err
		case stored == nil:
			return fmt.Errorf("dynamo: put webhook %q: %w", w.Event.ID, events.ErrWebhookNotFound)
		}
		return fmt.Errorf("dynamo: put webhook %q: version %d is not the stored one: %w", w.Event.ID, w.Version, events.ErrVersionConflict)
	case err != nil:
		return s.fail("put webhook", err)
	}
	s.count(ctx, moved(countWebhooks, pendingOnly(stateOf(out.Attributes)), pendingOnly(w.State.String())))
	w.Version = version
	return nil
}

// pendingOnly returns state when it is PENDING, else "": only pending
// webhooks are counted.
func pendingOnly(state string) string {
	if state == events.StatePending.String() {
		return state
	}
	return ""
}

// ClaimWebhooks takes userID's webhook claim for owner as events.Store
// specifies, in one conditional update of the user's WEBHOOKCLAIM item that
// succeeds when the item does not exist, has no owner (released), its until
// is before now, or owner holds it; a refused update is the answer false.
// The item carries a time to live leaseTTL after until. It returns an
// EINVALID error when events.CheckClaim refuses the arguments or userID is
// longer than MaxUserIDLen bytes or not UTF-8, and an EUNAVAILABLE error
// when DynamoDB cannot be reached.
func (s *Store) ClaimWebhooks(ctx context.Context, userID, owner string, now, until time.Time) (bool, error) {
	if err := events.CheckClaim(userID, owner); err != nil {
		return false, err
	}
	if err := checkUserID(userID); err != nil {
		return false, err
	}
	upd := expression.Set(expression.Name(attrOwner), expression.Value(owner)).
		Set(expression.Name(attrUntil), expression.Value(unixNanos(until))).
		Set(expression.Name(attrFormat), expression.Value(recordFormat)).
		Set(expression.Name(AttrTTL), expression.Value(until.Add(leaseTTL).Unix()))
	cond := expression.Or(
		expression.AttributeNotExists(expression.Name(attrOwner)),
		expression.Name(attrUntil).LessThan(expression.Value(unixNanos(now))),
		expression.Name(attrOwner).Equal(expression.Value(owner)),
	)
	return s.updateClaim(ctx, "claim webhooks", userID, upd, cond)
}

// ReleaseWebhooks ends owner's webhook claim of userID as events.Store
// specifies, in one conditional update that removes the owner when owner
// holds the claim. It returns an EUNAVAILABLE error when DynamoDB cannot be
// reached.
func (s *Store) ReleaseWebhooks(ctx context.Context, userID, owner string) error {
	if userID == "" || owner == "" || checkUserID(userID) != nil {
		return nil // nobody can hold such a claim
	}
	upd := expression.Remove(expression.Name(attrOwner)).Remove(expression.Name(attrUntil))
	_, err := s.updateClaim(ctx, "release webhooks", userID, upd, expression.Name(attrOwner).Equal(expression.Value(owner)))
	return err
}

// updateClaim applies upd to userID's webhook claim item when cond holds,
// and reports whether it did.
func (s *Store) updateClaim(ctx context.Context, op, userID string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (bool, error) {
	_, held, err := s.updateIf(ctx, op, pkUser+userID, skWebhookClaim, upd, cond, types.ReturnValueNone)
	return held, err
}

// WebhookBacklog returns the number of pending webhooks, from the backlog
// counter, and the time of the oldest, the oldest of the users' oldest in the
// index (see pendingHeads), as events.Store specifies. It returns an
// EUNAVAILABLE error when DynamoDB cannot be reached.
func (s *Store) WebhookBacklog(ctx context.Context) (int, time.Time, error) {
	c, err := s.counters(ctx, "webhook backlog", skCounterStats, countWebhooks)
	if err != nil {
		return 0, time.Time{}, err
	}
	heads, err := s.pendingHeads(ctx, "webhook backlog")
	if err != nil {
		return 0, time.Time{}, err
	}
	var oldest time.Time
	for _, h := range heads {
		if oldest.IsZero() || h.Event.OccurredAt.Before(oldest) {
			oldest = h.Event.OccurredAt
		}
	}
	return max(c[events.StatePending.String()], 0), oldest, nil
}
