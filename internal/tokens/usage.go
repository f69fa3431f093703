package tokens

import (
	"sync"
	"time"
)

// usage remembers which users asked for a token recently, and when their token
// expires, so that background refresh touches only links in use. Only
// background refresh forgets users who stopped asking (due), so while it is
// turned off usage records nothing, lest it grow with every user who ever
// asked. It is safe for concurrent use.
type usage struct {
	mu    sync.Mutex
	users map[string]use
	off   bool // background refresh is turned off: record nothing
}

// use is one user's entry in usage: when the user last asked for a token, and
// when that token expires.
type use struct{ last, expires time.Time }

// touch records that userID asked for a token at at, which expires at expires,
// unless usage is turned off.
func (u *usage) touch(userID string, at, expires time.Time) {
	u.mu.Lock()
	if !u.off {
		u.users[userID] = use{last: at, expires: expires}
	}
	u.mu.Unlock()
}

// turnOff forgets every user and records none from now on, as when
// background refresh is turned off.
func (u *usage) turnOff() {
	u.mu.Lock()
	u.off = true
	clear(u.users)
	u.mu.Unlock()
}

// expires records a new expiry of a user's token without counting it as a use.
func (u *usage) expires(userID string, at time.Time) {
	u.mu.Lock()
	if x, ok := u.users[userID]; ok {
		x.expires = at
		u.users[userID] = x
	}
	u.mu.Unlock()
}

// forget removes userID, as when the link is deleted or needs re-linking.
func (u *usage) forget(userID string) {
	u.mu.Lock()
	delete(u.users, userID)
	u.mu.Unlock()
}

// due returns the users asked for since usedSince whose token expires before
// expiresBefore, and forgets those not asked for since usedSince.
func (u *usage) due(usedSince, expiresBefore time.Time) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var due []string
	for id, x := range u.users {
		switch {
		case x.last.Before(usedSince):
			delete(u.users, id)
		case x.expires.Before(expiresBefore):
			due = append(due, id)
		}
	}
	return due
}
