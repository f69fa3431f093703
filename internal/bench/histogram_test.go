package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	// Every value falls in a bucket whose top is at least the value and at
	// most 1/64 above it, and buckets follow each other without gaps.
	values := []uint64{0, 1, 63, 64, 65, 127, 128, 129, 1000, 1 << 20, 1<<20 + 1, 123456789, 1<<63 - 1}
	for range 1000 {
		values = append(values, rand.Uint64N(1<<63))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= buckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		top := bucketTop(i)
		if top < v || float64(top-v) > float64(v)/64 {
			t.Errorf("value %d: bucket %d tops at %d", v, i, top)
		}
		if i > 0 && bucketOf(bucketTop(i-1)+1) != i {
			t.Errorf("bucket %d does not start right after bucket %d's top", i, i-1)
		}
	}
}

func TestHistogramPercentile(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", []time.Duration{42}, 99, 42},
		{"exact below 64ns", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 50, 5},
		{"p90 of ten", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9},
		{"p100 is max", []time.Duration{1, 2, 3 * time.Second}, 100, 3 * time.Second},
		{"capped at max", []time.Duration{1000, 1001}, 100, 1001},
		{"negative as 0", []time.Duration{-5}, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			for _, v := range tt.values {
				h.Record(v)
			}
			if got := h.Percentile(tt.p); got != tt.want {
				t.Errorf("Percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestHistogramAgainstSorted(t *testing.T) {
	// Percentiles of many random latencies, recorded in two histograms and
	// merged, are within 1/64 above the exact ones.
	var a, b Histogram
	var all []time.Duration
	for i := range 10000 {
		d := time.Duration(rand.ExpFloat64() * float64(time.Millisecond))
		all = append(all, d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	if a.Count() != uint64(len(all)) || a.Max() != all[len(all)-1] {
		t.Fatalf("count %d max %v, want %d and %v", a.Count(), a.Max(), len(all), all[len(all)-1])
	}
	for _, p := range []float64{1, 50, 90, 99, 99.9} {
		exact := all[int(math.Ceil(p/100*float64(len(all))))-1]
		got := a.Percentile(p)
		if got < exact || float64(got-exact) > float64(exact)/64 {
			t.Errorf("p%v = %v, exact %v", p, got, exact)
		}
	}
}
