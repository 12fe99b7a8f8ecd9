// Package parallel splits CPU-bound work over a slice across cores.
package parallel

import (
	"runtime"
	"sync"
)

// Chunks calls fn on contiguous ranges [lo, hi) covering 0..n, one range per
// core (GOMAXPROCS) on its own goroutine, and returns when all are done.
// Below min items (or on one core) it calls fn(0, n) on the caller's
// goroutine. fn must only touch its own range.
func Chunks(n, min int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < min || workers < 2 {
		fn(0, n)
		return
	}
	size := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += size {
		hi := lo + size
		if hi > n {
			hi = n
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
