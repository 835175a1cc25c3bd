package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestParallelForCoversEachIndexOnce checks plain and nested calls (a
// kernel run from inside a parallel region) for gaps, overlaps and
// deadlocks.
func TestParallelForCoversEachIndexOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 17, 1000, 4097} {
		hits := make([]atomic.Int32, n)
		parallelFor(n, 1<<15, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				hits[i].Add(1)
			}
		})
		for i := range hits {
			if h := hits[i].Load(); h != 1 {
				t.Fatalf("n %d: index %d run %d times", n, i, h)
			}
		}
	}
	const outer, inner = 7, 301
	var nested [outer * inner]atomic.Int32
	parallelFor(outer, 1<<15, func(lo, hi int) {
		for o := lo; o < hi; o++ {
			parallelFor(inner, 1<<15, func(l, h int) {
				for i := l; i < h; i++ {
					nested[o*inner+i].Add(1)
				}
			})
		}
	})
	for i := range nested {
		if h := nested[i].Load(); h != 1 {
			t.Fatalf("nested: index %d run %d times", i, h)
		}
	}
}

// TestParallelForUsesIdleWorker checks that every call of a chain gets the
// pool's worker, both right after the previous call (the worker is still
// polling; a worker that had not yet gone back to waiting used to miss the
// handoff, leaving the call to the caller alone) and after a pause long
// enough for it to park. Each of the two chunks waits for the other to
// start, so a call run by one goroutine fails instead of passing slowly.
func TestParallelForUsesIdleWorker(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two Ps")
	}
	for call := range 400 {
		if call%100 == 99 {
			time.Sleep(5 * spinWait)
		}
		var started atomic.Int32
		alone := atomic.Bool{}
		runParallel(2, 2, func(lo, hi int) {
			started.Add(1)
			deadline := time.Now().Add(2 * time.Second)
			for started.Load() < 2 {
				if time.Now().After(deadline) {
					alone.Store(true)
					return
				}
				runtime.Gosched()
			}
		})
		if alone.Load() {
			t.Fatalf("call %d ran its two chunks one after the other", call)
		}
	}
}

// goroutinePerCall is the parallelFor the pool replaced, kept to measure
// the pool's per-call overhead against.
func goroutinePerCall(n int, body func(lo, hi int)) {
	var wg sync.WaitGroup
	chunk := (n + 1) / 2
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body(lo, min(lo+chunk, n))
		}()
	}
	wg.Wait()
}

// BenchmarkParallelForOverhead is the cost of one parallel call whose body
// does almost nothing: the per-op overhead a small kernel pays.
func BenchmarkParallelForOverhead(b *testing.B) {
	var sink atomic.Int64
	body := func(lo, hi int) { sink.Add(int64(hi - lo)) }
	b.Run("pool", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			parallelFor(64, 1<<15, body)
		}
	})
	b.Run("goroutine-per-call", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			goroutinePerCall(64, body)
		}
	})
}
