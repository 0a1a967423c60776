// Package parallel splits work over indices across goroutines.
package parallel

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Range runs fn over [0, n) split into equal contiguous parts (the last
// one shorter), one goroutine per part, on up to workers goroutines
// (runtime.GOMAXPROCS when workers ≤ 0) and at most n/minPer of them; it
// returns when every part is done. When only one goroutine would run,
// fn(0, n) runs on the caller's.
func Range(n, workers, minPer int, fn func(lo, hi int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if minPer < 1 {
		minPer = 1
	}
	workers = min(workers, n/minPer)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// Items runs items 0 … n−1 on up to workers goroutines (runtime.GOMAXPROCS
// when workers ≤ 0), each taking the next item as soon as it finishes one.
// Every goroutine first calls newWorker once and then runs items through
// the function it returns, so that function may keep per-goroutine
// scratch. No item starts once ctx is done; Items returns ctx.Err() when
// ctx is done after every goroutine has stopped, nil otherwise.
func Items(ctx context.Context, n uint64, workers int, newWorker func() func(item uint64)) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range min(uint64(workers), n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := newWorker()
			for ctx.Err() == nil {
				it := next.Add(1) - 1
				if it >= n {
					return
				}
				run(it)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}
