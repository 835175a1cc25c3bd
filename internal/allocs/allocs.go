// Package allocs measures the heap allocations of a warm operation with
// every core taking part, for the tests that hold decode steps and kernels
// to zero allocations. Unlike testing.AllocsPerRun it keeps GOMAXPROCS, so
// the kernels' worker pool runs as it does in production.
package allocs

import (
	"runtime"
	"runtime/debug"
)

// Steady is the heap allocations per call of step in the steady state:
// step is run in up to three windows of runs calls (reset, when not nil,
// is called before each window) and the last window's count is returned,
// stopping at the first window that allocates nothing. GC is off while
// counting: a collection empties the runtime's caches (sudogs, the per-P
// allocation caches), whose refills would land at random. Several windows,
// because the worker pool's goroutines park (and take their runtime
// caches) after a parallel call has returned, so their first parks can
// land in a window. runtime.ReadMemStats flushes the per-P caches, so its
// Mallocs is exact. The caller warms step up first.
func Steady(runs int, reset, step func()) float64 {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	var per float64
	for window := 0; window < 3; window++ {
		if reset != nil {
			reset()
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			step()
		}
		runtime.ReadMemStats(&after)
		if per = float64(after.Mallocs-before.Mallocs) / float64(runs); per == 0 {
			break
		}
	}
	return per
}
