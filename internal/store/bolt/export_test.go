package bolt

import "testing"

// SetSweepBatch makes DeleteExpiredClaims look at n claims per transaction
// until the test ends. Tests that call it must not run in parallel.
func SetSweepBatch(tb testing.TB, n int) {
	old := sweepBatch
	sweepBatch = n
	tb.Cleanup(func() { sweepBatch = old })
}
