package parallel_test

import (
	"sync/atomic"
	"testing"

	"github.com/orderstream/orderstream/internal/parallel"
)

func TestChunksCoversEveryIndexOnce(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 7, 511, 512, 513, 10_000} {
		seen := make([]atomic.Int32, n)
		parallel.Chunks(n, 512, func(lo, hi int) {
			if lo > hi || lo < 0 || hi > n {
				t.Errorf("n=%d: range [%d, %d)", n, lo, hi)
				return
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		for i := range seen {
			if got := seen[i].Load(); got != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, got)
			}
		}
	}
}
