package reciprocal

// Buckets returns how many user and client buckets l keeps, for the tests of
// its memory bound.
func (l *Limiter) Buckets() (users, clients int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.users.size(), l.clients.size()
}
