package tokens

// The refresh lease's durations, for the tests of package tokens_test.
const (
	RefreshTimeout  = refreshTimeout
	ExchangeTimeout = exchangeTimeout
	RecordTimeout   = recordTimeout
	LeaseTTL        = leaseTTL
	LeasePoll       = leasePoll
)

// PrefixStart is prefixStart, for its table test.
var PrefixStart = prefixStart
