package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits sets the Histogram's precision: each power of two is cut into
// 1<<subBits buckets, so a percentile is at most 1/64 (1.6 %) above the
// latency it stands for; latencies under 64 ns are kept exactly.
const subBits = 6

// buckets is the number of buckets that cover every time.Duration.
const buckets = (65 - subBits) << subBits

// Histogram counts latencies in log-linear buckets: its size is fixed however
// long the run, and Percentile answers within 1.6 %. The zero value is empty
// and ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts [buckets]uint64
	n      uint64
	max    time.Duration
}

// Record counts one latency; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds o's latencies to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded, exactly; 0 when none was.
func (h *Histogram) Max() time.Duration { return h.max }

// Percentile returns the latency that p percent (0 < p <= 100) of the
// recorded ones do not exceed: the top of its bucket, never above Max. It is
// 0 when nothing was recorded.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketTop(i)), h.max)
		}
	}
	return h.max
}

// bucketOf returns the bucket of v nanoseconds: v itself below 1<<subBits,
// else by v's highest subBits+1 bits and their shift.
func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketTop returns the largest value of bucket i.
func bucketTop(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i>>subBits - 1
	mantissa := uint64(i&(1<<subBits-1) + 1<<subBits)
	return (mantissa+1)<<shift - 1
}
