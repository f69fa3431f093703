package tokens

// The Service's durations, for the tests of package tokens_test.
const (
	RefreshTimeout  = refreshTimeout
	ExchangeTimeout = exchangeTimeout
	RecordTimeout   = recordTimeout
	LeaseTTL        = leaseTTL
	LeasePoll       = leasePoll
)

// UsersInUse returns how many users s remembers as asking for tokens, for
// background refresh.
func UsersInUse(s *Service) int {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	return len(s.usage.users)
}

// PrefixStart is prefixStart, for its table test.
var PrefixStart = prefixStart
