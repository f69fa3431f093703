package dynamo

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// GetLink returns the link of userID in the view's skill as tokens.Store
// specifies, read with a strongly consistent read. It returns ErrLinkNotFound (wrapped) when there is
// none (always for a user id that is not UTF-8, which PutLink refuses), an
// EUNAVAILABLE error when DynamoDB cannot be reached, and an EINTERNAL error when
// the stored item is corrupt.
func (s *Store) GetLink(ctx context.Context, userID string) (*tokens.Link, error) {
	if !utf8.ValidString(userID) {
		return nil, fmt.Errorf("dynamo: get link: user id is not UTF-8: %w", tokens.ErrLinkNotFound)
	}
	item, err := s.get(ctx, "get link", s.keys.user+userID, skLink)
	switch {
	case err != nil:
		return nil, err
	case item == nil:
		return nil, fmt.Errorf("dynamo: get link of %q: %w", userID, tokens.ErrLinkNotFound)
	}
	s.flushStale(ctx, s.keys.user+userID, skLink, item)
	if deleting(item) {
		return nil, fmt.Errorf("dynamo: get link of %q: being deleted: %w", userID, tokens.ErrLinkNotFound)
	}
	return s.decodeLink(item)
}

// deleting reports whether item is a link whose deletion is written but not
// finished (see DeleteLink): it is gone for readers.
func deleting(item map[string]types.AttributeValue) bool {
	v, ok := item[attrDeleting].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

// PutLink writes link as a link of the view's skill, as tokens.Store
// specifies, in one conditional write. The new version is the next value of
// the link counter shifted left by 24 bits for a new link, the stored version
// plus one for an update. Its events are stored under their user, whatever
// the skill (see the package documentation).
//
// It returns an EINVALID error when link.Validate fails, link.SkillID is
// neither "" nor the view's skill, or the user id is longer than
// MaxUserIDLen bytes or not UTF-8, ErrVersionConflict (wrapped) when the
// stored version differs or the link to update is gone, and an EUNAVAILABLE
// error when DynamoDB cannot be reached. On any error link is left unchanged.
func (s *Store) PutLink(ctx context.Context, link *tokens.Link, events ...tokens.Event) error {
	if err := link.Validate(); err != nil {
		return err
	}
	if link.SkillID != "" && link.SkillID != s.skill {
		return tokens.Errorf(tokens.EINVALID, "link of skill %q in the store of skill %q", link.SkillID, s.skill)
	}
	if err := checkEvents(events); err != nil {
		return err
	}
	if err := checkUserID(link.UserID); err != nil {
		return err
	}
	var version int64
	var cond expression.ConditionBuilder
	if link.Version == 0 {
		n, err := s.next(ctx, "put link: next version", skCounterLinks)
		if err != nil {
			return err
		}
		version = n << versionShift
		cond = expression.AttributeNotExists(expression.Name(AttrPK))
	} else {
		version = link.Version + 1
		cond = expression.Name(attrVersion).Equal(expression.Value(link.Version))
	}
	// An outbox left by a change that stopped half way must be flushed
	// before the item is written again.
	cond = cond.And(expression.AttributeNotExists(expression.Name(attrOutbox)))
	item, err := s.encodeLink(link, version)
	if err != nil {
		return err
	}
	ob, err := withOutbox(item, events, s.now())
	if err != nil {
		return err
	}
	pk := s.keys.user + link.UserID
	for range 3 {
		old, ok, err := s.putOld(ctx, "put link", item, cond)
		if err != nil {
			return err
		}
		if ok {
			s.countLinks(ctx, moved(countLinks, stateOf(old), link.State.String()))
			link.Version = version
			// The change and its events are written: flushing them into event
			// items may fail, and is then left to readers (flushStale).
			_ = s.flush(ctx, pk, skLink, ob)
			return nil
		}
		_, flushed, err := s.recover(ctx, pk, skLink)
		if err != nil {
			return err
		}
		if !flushed {
			break
		}
	}
	return fmt.Errorf("dynamo: put link of %q: version %d is not the stored one: %w",
		link.UserID, link.Version, tokens.ErrVersionConflict)
}

// DeleteLink removes the link of userID in the view's skill as tokens.Store
// specifies, in one conditional write. It returns ErrLinkNotFound (wrapped) when there is none,
// and an EUNAVAILABLE error when DynamoDB cannot be reached. The user's refresh
// lease, if any, stays until it expires.
func (s *Store) DeleteLink(ctx context.Context, userID string, events ...tokens.Event) error {
	if err := checkEvents(events); err != nil {
		return err
	}
	if !utf8.ValidString(userID) {
		return fmt.Errorf("dynamo: delete link: user id is not UTF-8: %w", tokens.ErrLinkNotFound)
	}
	pk := s.keys.user + userID
	cond := expression.AttributeExists(expression.Name(AttrPK)).And(expression.AttributeNotExists(expression.Name(attrOutbox)))
	for range 3 {
		var old map[string]types.AttributeValue
		var ob outbox
		var ok bool
		var err error
		if len(events) == 0 {
			old, ok, err = s.removeIf(ctx, "delete link", pk, skLink, cond)
		} else {
			old, ob, ok, err = s.markDeleting(ctx, pk, events, cond)
		}
		if err != nil {
			return err
		}
		if ok {
			s.countLinks(ctx, moved(countLinks, stateOf(old), ""))
			_ = s.flush(ctx, pk, skLink, ob) // as in PutLink
			return nil
		}
		exists, flushed, err := s.recover(ctx, pk, skLink)
		if err != nil {
			return err
		}
		if !exists || !flushed {
			break
		}
	}
	return fmt.Errorf("dynamo: delete link of %q: %w", userID, tokens.ErrLinkNotFound)
}

// markDeleting writes the deletion of the link item pk with its events: the
// events as the item's outbox, and the item marked deleting, gone for readers
// from then on, when cond holds. flush then stores the events and removes the
// item. It returns the item as it was.
func (s *Store) markDeleting(ctx context.Context, pk string, evs []tokens.Event, cond expression.ConditionBuilder) (map[string]types.AttributeValue, outbox, bool, error) {
	attrs := map[string]types.AttributeValue{}
	ob, err := withOutbox(attrs, evs, s.now())
	if err != nil {
		return nil, outbox{}, false, err
	}
	ob.Deleting = true
	upd := expression.Set(expression.Name(attrOutbox), expression.Value(ob.Events)).
		Set(expression.Name(attrOutboxAt), expression.Value(ob.At)).
		Set(expression.Name(attrDeleting), expression.Value(true))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, outbox{}, false, fmt.Errorf("dynamo: delete link: build update: %w", err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: s.table, Key: key(pk, skLink),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllOld,
	})
	if held, err := s.held("delete link", err); !held {
		return nil, outbox{}, false, err
	}
	return out.Attributes, ob, true, nil
}

// removeIf deletes the item pk, sk when cond holds and returns what it held;
// it reports false when cond did not hold.
func (s *Store) removeIf(ctx context.Context, op, pk, sk string, cond expression.ConditionBuilder) (map[string]types.AttributeValue, bool, error) {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: %s: build condition: %w", op, err)
	}
	out, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: s.table, Key: key(pk, sk),
		ConditionExpression: expr.Condition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueAllOld,
	})
	if held, err := s.held(op, err); !held {
		return nil, false, err
	}
	return out.Attributes, true, nil
}

// ListLinks returns a page of the view's links as tokens.Store specifies,
// from the view's partition of the index IndexGSI1: a link written a moment
// ago may be missing or stale. It reads one link more than the page, to know
// whether another page follows. Links being deleted (see DeleteLink) are
// read but skipped; when that leaves the page short, it reads on after the
// last item read, as many links as the page still lacks and one more, so that
// a page ends the listing only when no link follows it, and a page holds at
// most limit links.
//
// It returns an EINVALID error when cursor cannot be a user id (longer than
// 1024 bytes or not UTF-8), an EUNAVAILABLE error when DynamoDB cannot be
// reached, and an EINTERNAL error when a stored item is corrupt.
func (s *Store) ListLinks(ctx context.Context, cursor string, limit int) (tokens.LinkPage, error) {
	limit = tokens.PageSize(limit)
	if len(cursor) > maxSortKey || !utf8.ValidString(cursor) {
		return tokens.LinkPage{}, tokens.Errorf(tokens.EINVALID, "cursor is no user id: longer than %d bytes or not UTF-8", maxSortKey)
	}
	var page tokens.LinkPage
	after := cursor // the user id after which the next query starts
	for {
		kc := expression.Key(AttrGSI1PK).Equal(expression.Value(s.keys.links))
		if after != "" {
			kc = kc.And(expression.Key(AttrGSI1SK).GreaterThan(expression.Value(after)))
		}
		want := limit - len(page.Links) + 1
		items, err := s.query(ctx, "list links", kc, nil, want)
		if err != nil {
			return tokens.LinkPage{}, err
		}
		for _, item := range items {
			if len(page.Links) == limit {
				page.Next = page.Links[limit-1].UserID
				return page, nil
			}
			link, err := s.decodeLink(item)
			if err != nil {
				return tokens.LinkPage{}, err
			}
			after = link.UserID
			s.flushStale(ctx, s.keys.user+link.UserID, skLink, item)
			if deleting(item) {
				continue
			}
			page.Links = append(page.Links, link)
		}
		if len(items) < want {
			return page, nil // the partition is exhausted
		}
	}
}

// query returns up to limit items (every item when limit is 0) of IndexGSI1
// that match kc, in the index's order, following DynamoDB's pages: from the
// first, or after the item whose table and index keys start holds (as
// DynamoDB's ExclusiveStartKey, which need not be an item any more).
func (s *Store) query(ctx context.Context, op string, kc expression.KeyConditionBuilder, start map[string]types.AttributeValue, limit int) ([]map[string]types.AttributeValue, error) {
	return s.queryWhere(ctx, op, expression.NewBuilder().WithKeyCondition(kc), start, limit)
}

// queryWhere is query with the key condition, and a filter if any, in b: it
// returns up to limit items that match both. DynamoDB reads the items that
// the filter drops all the same.
func (s *Store) queryWhere(ctx context.Context, op string, b expression.Builder, start map[string]types.AttributeValue, limit int) ([]map[string]types.AttributeValue, error) {
	expr, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dynamo: %s: build query: %w", op, err)
	}
	in := &dynamodb.QueryInput{
		TableName:                 s.table,
		IndexName:                 aws.String(IndexGSI1),
		KeyConditionExpression:    expr.KeyCondition(),
		FilterExpression:          expr.Filter(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ExclusiveStartKey:         start,
	}
	var items []map[string]types.AttributeValue
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(limit - len(items))) // read no more than needed
		}
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, s.fail(op, err)
		}
		for _, item := range out.Items {
			if limit > 0 && len(items) == limit {
				return items, nil
			}
			items = append(items, item)
		}
		if len(out.LastEvaluatedKey) == 0 || (limit > 0 && len(items) == limit) {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ClaimCode records a claim of the code with codeHash for userID in the
// view's skill, and returns the code's owner, as tokens.Store specifies. The
// claim is one conditional write; when its condition fails, a consistent read
// names the owner. A claim that userID makes again, or takes over, gets the
// new expires. Claims carry a time to live one day after expires.
//
// It returns an EINVALID error when tokens.ValidateClaim refuses the
// arguments, codeHash is not UTF-8 or too long for the partition key (over
// 1900 bytes may be, depending on the skill id), or userID is longer than
// MaxUserIDLen bytes or not UTF-8;
// an EUNAVAILABLE error when DynamoDB cannot be reached; and an EINTERNAL error
// when the stored claim is corrupt.
func (s *Store) ClaimCode(ctx context.Context, codeHash, userID string, expires time.Time) (string, error) {
	if err := tokens.ValidateClaim(codeHash, userID); err != nil {
		return "", err
	}
	if len(s.keys.code)+len(codeHash) > maxPartitionKey || !utf8.ValidString(codeHash) {
		return "", tokens.Errorf(tokens.EINVALID, "code hash longer than %d bytes or not UTF-8", maxPartitionKey-len(s.keys.code))
	}
	if err := checkUserID(userID); err != nil {
		return "", err
	}
	item, err := marshal("claim code", claimItem{
		PK: s.keys.code + codeHash, SK: skCode, Format: recordFormat, UserID: userID,
		Expires: unixNanos(expires), TTL: expires.Add(claimTTL).Unix(),
	})
	if err != nil {
		return "", err
	}
	// A claim that stands makes the condition fail; the read after it may find
	// the claim expired or removed since, and then the write is tried again.
	for range 3 {
		now := s.now()
		ok, err := s.put(ctx, "claim code", item, expression.Or(
			expression.AttributeNotExists(expression.Name(AttrPK)),
			expression.Name(attrExpires).LessThan(expression.Value(now.UnixNano())),
			expression.Name(attrUserID).Equal(expression.Value(userID)),
		))
		switch {
		case err != nil:
			return "", err
		case ok:
			return userID, nil
		}
		stored, err := s.get(ctx, "claim code: read claim", s.keys.code+codeHash, skCode)
		switch {
		case err != nil:
			return "", err
		case stored == nil:
			continue
		}
		claim, err := decodeClaim(stored)
		if err != nil {
			return "", err
		}
		if claim.Expires >= s.now().UnixNano() {
			return claim.UserID, nil
		}
	}
	return "", fmt.Errorf("dynamo: claim code: the claim kept changing: %w", errUnavailable)
}

// checkUserID returns an EINVALID error when userID is longer than MaxUserIDLen
// bytes or not UTF-8 (DynamoDB strings are UTF-8: the SDK would store
// something else).
func checkUserID(userID string) error {
	switch {
	case len(userID) > MaxUserIDLen:
		return tokens.Errorf(tokens.EINVALID, "user id longer than %d bytes", MaxUserIDLen)
	case !utf8.ValidString(userID):
		return tokens.Errorf(tokens.EINVALID, "user id is not UTF-8")
	}
	return nil
}
