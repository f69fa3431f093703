package tokens

import "context"

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
}

// Links returns up to PageSize(limit) links that match filter, ordered by user
// id, starting after the user id in cursor; see Store.ListLinks. A filter by
// state uses the store's LinkStateLister when it has one; otherwise it reads
// links a page at a time until the page is full or the links end. It returns
// an EINVALID error when filter.State is set and unknown, and the Store's
// errors of ListLinks.
func (s *Service) Links(ctx context.Context, filter LinkFilter, cursor string, limit int) (LinkPage, error) {
	if filter.State == 0 {
		return s.store.ListLinks(ctx, cursor, limit)
	}
	if err := filter.State.Validate(); err != nil {
		return LinkPage{}, err
	}
	if lister, ok := s.store.(LinkStateLister); ok {
		return lister.ListLinksInState(ctx, filter.State, cursor, limit)
	}
	limit = PageSize(limit)
	var page LinkPage
	for {
		read, err := s.store.ListLinks(ctx, cursor, MaxPageSize)
		if err != nil {
			return LinkPage{}, err
		}
		for i, l := range read.Links {
			if l.State != filter.State {
				continue
			}
			page.Links = append(page.Links, l)
			if len(page.Links) == limit {
				if i < len(read.Links)-1 || read.Next != "" {
					page.Next = l.UserID
				}
				return page, nil
			}
		}
		if read.Next == "" {
			return page, nil
		}
		cursor = read.Next
	}
}
