package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// KeyProblem is a key that some of the links CheckKeys read need, and whose
// tokens did not open.
type KeyProblem struct {
	// KeyID names the key, as KeyRing.KeyOf does.
	KeyID string
	// Links is how many of the links read need the key and did not open.
	Links int
	// Held says whether the ring has the key: when it has not (Err is a
	// *KeyMissingError), the key is missing from the configuration; when it
	// has, the key is wrong for these links, or a key service refused or could
	// not be reached (see Err).
	Held bool
	// Err is the error of the first link that did not open.
	Err error
}

// String names the key, how many links need it, and why they did not open.
func (p KeyProblem) String() string {
	why := "not configured"
	if p.Held {
		why = "configured, but does not open them: " + ErrorMessage(p.Err)
	}
	return fmt.Sprintf("%s (%d links: %s)", p.KeyID, p.Links, why)
}

// CheckKeys opens the tokens of the first n links of store (in user-id order,
// at most MaxPageSize) with ring, so that a wrong or missing key shows at
// start-up rather than at each user's next call. It returns how many links it
// read and, ordered by key id, the keys whose links did not open. It opens
// nothing but what it read, keeps no plaintext, and writes nothing.
//
// It returns the Store's errors of ListLinks (EUNAVAILABLE, EINTERNAL).
func CheckKeys(ctx context.Context, store Store, ring KeyRing, n int) (read int, problems []KeyProblem, err error) {
	page, err := store.ListLinks(ctx, "", PageSize(n))
	if err != nil {
		return 0, nil, fmt.Errorf("list links: %w", err)
	}
	byKey := map[string]*KeyProblem{}
	for _, l := range page.Links {
		b, err := ring.Open(SealSubject(l.SkillID, l.UserID), l.Tokens)
		clear(b)
		if err == nil {
			continue
		}
		id := ring.KeyOf(l.Tokens)
		p, ok := byKey[id]
		if !ok {
			var missing *KeyMissingError
			p = &KeyProblem{KeyID: id, Held: !errors.As(err, &missing), Err: err}
			byKey[id] = p
		}
		p.Links++
	}
	for _, p := range byKey {
		problems = append(problems, *p)
	}
	slices.SortFunc(problems, func(a, b KeyProblem) int { return strings.Compare(a.KeyID, b.KeyID) })
	return len(page.Links), problems, nil
}
