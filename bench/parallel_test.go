package bench

import (
	"sync"
	"sync/atomic"
)

// parallel calls fn for every i in [0, n), from workers goroutines taking
// the next i in turn, and returns when all are done. A worker stops early
// when fn returns false (after a failure it has reported), so one broken
// request does not flood the log.
func parallel(n, workers int, fn func(i int) bool) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if !fn(i) {
					return
				}
			}
		})
	}
	wg.Wait()
}
