package parallel

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Range covers [0, n) exactly once in contiguous parts, on at most
// workers and at most n/minPer goroutines.
func TestRange(t *testing.T) {
	for _, tc := range []struct{ n, workers, minPer, maxParts int }{
		{0, 4, 1, 1},
		{1, 4, 1, 1},
		{10, 4, 1, 4},
		{10, 4, 3, 3},
		{10, 4, 20, 1},
		{100_000, 8, 4096, 8},
		{100_000, 0, 4096, 0},
		{7, 3, 0, 3},
	} {
		var mu sync.Mutex
		seen := make([]int, tc.n)
		parts := 0
		Range(tc.n, tc.workers, tc.minPer, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			parts++
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("%+v: index %d covered %d times", tc, i, c)
			}
		}
		if parts > 1 && parts > tc.n/max(tc.minPer, 1) {
			t.Errorf("%+v: %d parts of fewer than %d items", tc, parts, tc.minPer)
		}
		if tc.maxParts > 0 && parts > tc.maxParts {
			t.Errorf("%+v: %d parts", tc, parts)
		}
	}
}

// Items runs every item exactly once, calls newWorker once per goroutine
// (at most workers, at most n), and stops handing out items once ctx is
// done.
func TestItems(t *testing.T) {
	for _, tc := range []struct {
		n       uint64
		workers int
	}{{0, 4}, {1, 4}, {3, 8}, {1000, 3}, {1000, 0}} {
		var mu sync.Mutex
		seen := make([]int, tc.n)
		workers := 0
		err := Items(context.Background(), tc.n, tc.workers, func() func(uint64) {
			mu.Lock()
			workers++
			mu.Unlock()
			return func(i uint64) {
				mu.Lock()
				seen[i]++
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("%+v: item %d ran %d times", tc, i, c)
			}
		}
		if limit := min(tc.n, uint64(max(tc.workers, runtime.GOMAXPROCS(0)))); uint64(workers) > limit {
			t.Errorf("%+v: %d workers", tc, workers)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Int64
	err := Items(ctx, 1000, 2, func() func(uint64) {
		return func(i uint64) {
			if ran.Add(1) == 10 {
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err %v", err)
	}
	if n := ran.Load(); n > 11 {
		t.Fatalf("%d items ran after cancellation at the 10th (2 workers)", n)
	}
}
