package tokens

import (
	"context"
	"strings"
	"unicode/utf8"
)

// LinkStateLister is an optional ability of a Store: listing the links in one
// state without reading the links in others (an index kept with each write).
// A Service over a Store without it reads every link and keeps those in the
// state. Implementations are safe for concurrent use; the method may return
// EUNAVAILABLE and EINTERNAL errors as the Store's.
type LinkStateLister interface {
	// ListLinksInState returns up to PageSize(limit) links in state, ordered
	// by user id as bytes, starting after the user id in cursor ("" for the
	// first page), as ListLinks does; the page's Next is the cursor of the
	// following page. It returns an EINVALID error when state is unknown or
	// cursor cannot be a user id of the store.
	ListLinksInState(ctx context.Context, state State, cursor string, limit int) (LinkPage, error)
}

// LinkFilter narrows a listing of links; the zero value matches every link.
type LinkFilter struct {
	// State, when set, keeps the links in that state.
	State State
	// UserIDPrefix, when set, keeps the links whose user id starts with it
	// (as bytes).
	UserIDPrefix string
}

// Links returns up to PageSize(limit) links that match filter, ordered by user
// id, starting after the user id in cursor; see Store.ListLinks. A filter by
// state uses the store's LinkStateLister when it has one; otherwise, and for a
// filter by prefix, it reads links a page at a time until the page is full or
// the links end. The links of a prefix are one run in user id order: the
// reading starts just before the run and stops after it, so a prefix costs
// the links it matches, not all of them. A page may name a next page that
// turns out empty. It returns an EINVALID error when filter.State is set and
// unknown, and the Store's errors of ListLinks.
func (s *Service) Links(ctx context.Context, filter LinkFilter, cursor string, limit int) (LinkPage, error) {
	if filter.State != 0 {
		if err := filter.State.Validate(); err != nil {
			return LinkPage{}, err
		}
	}
	lister, indexed := s.store.(LinkStateLister)
	prefix := filter.UserIDPrefix
	switch {
	case prefix == "" && filter.State == 0:
		return s.store.ListLinks(ctx, cursor, limit)
	case prefix == "" && indexed:
		return lister.ListLinksInState(ctx, filter.State, cursor, limit)
	}
	limit = PageSize(limit)
	read := func(cursor string, n int) (LinkPage, error) { return s.store.ListLinks(ctx, cursor, n) }
	readSize := MaxPageSize // a state checked here may skip many links
	switch {
	case filter.State != 0 && indexed:
		read = func(cursor string, n int) (LinkPage, error) {
			return lister.ListLinksInState(ctx, filter.State, cursor, n)
		}
		readSize = limit
	case filter.State == 0:
		readSize = limit
	}
	if start := prefixStart(prefix); prefix != "" && cursor < start {
		cursor = start
	}
	var page LinkPage
	for {
		got, err := read(cursor, readSize)
		if err != nil {
			return LinkPage{}, err
		}
		for i, l := range got.Links {
			if !strings.HasPrefix(l.UserID, prefix) {
				if l.UserID > prefix {
					return page, nil // past the prefix's run
				}
				continue
			}
			if filter.State != 0 && l.State != filter.State {
				continue
			}
			page.Links = append(page.Links, l)
			if len(page.Links) == limit {
				if i < len(got.Links)-1 || got.Next != "" {
					page.Next = l.UserID
				}
				return page, nil
			}
		}
		if got.Next == "" {
			return page, nil
		}
		cursor = got.Next
	}
}

// prefixStart returns the cursor from which a listing in user id order
// (after the cursor) reaches the user ids that start with prefix first: a
// string below every such id, above nearly every other id below them. It is
// prefix with its last rune r replaced by r-1 followed by U+10FFFF, the
// greatest rune, whose UTF-8 bytes are the greatest too: only ids that repeat
// that exact start (and U+10FFFF is a private-use rune) lie between it and
// the prefix's run. For a last rune of U+0001 it is the prefix without it
// (user ids hold no NUL), and "" for a prefix of one such rune or none.
func prefixStart(prefix string) string {
	r, size := utf8.DecodeLastRuneInString(prefix)
	if size == 0 {
		return ""
	}
	head := prefix[:len(prefix)-size]
	switch {
	case r <= 1 || r == utf8.RuneError && size == 1:
		// No rune below r but NUL, or a byte that is no rune: start at the head.
		return head
	case r-1 >= 0xD800 && r-1 <= 0xDFFF: // surrogates are no runes
		return head + string(rune(0xD7FF)) + string(utf8.MaxRune)
	}
	return head + string(r-1) + string(utf8.MaxRune)
}
