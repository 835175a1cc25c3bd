// Package allocs measures the heap allocations of a warm operation with
// every core taking part, for the tests that hold decode steps and kernels
// to zero allocations. Unlike testing.AllocsPerRun it keeps GOMAXPROCS, so
// the kernels' worker pool runs as it does in production, and it tells the
// code's own allocations from the runtime's bookkeeping by their stacks.
package allocs

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// module prefixes the functions of this project.
const module = "github.com/mlx-moe/mlx-moe/"

// Report is what Steady measured in its last window.
type Report struct {
	// PerCall is the code's heap allocations per call.
	PerCall float64
	// Sites are the allocating stacks (innermost frames outside the
	// runtime), each with its count over the window, sorted.
	Sites []string
}

func (r Report) String() string {
	return fmt.Sprintf("%.1f heap allocations per call:\n%s", r.PerCall, strings.Join(r.Sites, "\n"))
}

// Steady measures the heap allocations per call of step in the steady
// state: step runs in up to three windows of runs calls with every
// allocation profiled, and the last window's count is returned, stopping at
// the first window in which the code allocates nothing. Several windows,
// because one-time runtime growth (an interface table met for the first
// time) can land in the first. The caller warms step up first.
//
// An allocation counts unless the runtime made it for its own bookkeeping
// (see bookkeeping) or its stack holds no function of this project (a
// background goroutine of the runtime), or it is the measurement's own, or
// excluded reports the first
// function of this project on its stack, from the allocation outwards
// (excluded may be nil): a test's stand-in for a device, say.
func Steady(runs int, step func(), excluded func(function string) bool) Report {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	var r Report
	for window := 0; window < 3; window++ {
		before := profile()
		for range runs {
			step()
		}
		after := profile()
		var total int64
		bySite := map[string]int64{}
		for stk, n := range after {
			if n -= before[stk]; n <= 0 {
				continue
			}
			site, counts := describe(stk, excluded)
			if !counts {
				continue
			}
			total += n
			bySite[site] += n
		}
		r = Report{PerCall: float64(total) / float64(runs)}
		for s, n := range bySite {
			r.Sites = append(r.Sites, fmt.Sprintf("  %d at %s", n, s))
		}
		slices.Sort(r.Sites)
		if total == 0 {
			break
		}
	}
	return r
}

type stack [32]uintptr

// profile returns the objects allocated so far per stack. A record reaches
// the profile at the end of a garbage collection cycle, so two cycles run
// first.
func profile() map[stack]int64 {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+50)
	}
	m := make(map[stack]int64, len(recs))
	for _, r := range recs {
		m[r.Stack0] += r.AllocObjects
	}
	return m
}

// bookkeeping are the runtime functions whose allocations are the
// scheduler's, not the caller's: a sudog for a goroutine that parks on a
// channel or a WaitGroup (the per-P caches of them drift between cores and
// refill from the heap at random; a collection empties the central one),
// and an OS thread's m when the scheduler starts one more.
var bookkeeping = []string{"runtime.acquireSudog", "runtime.allocm"}

// describe returns the innermost frames of stk outside the runtime, and
// whether its allocation counts (see Steady).
func describe(stk stack, excluded func(string) bool) (site string, counts bool) {
	frames := runtime.CallersFrames(stk[:])
	var parts []string
	decided, inRuntime := false, true
	for {
		f, more := frames.Next()
		if inRuntime && slices.Contains(bookkeeping, f.Function) {
			return "", false
		}
		if !strings.HasPrefix(f.Function, "runtime.") {
			inRuntime = false
		}
		if !decided && strings.HasPrefix(f.Function, module) {
			decided = true
			counts = f.Function != module+"internal/allocs.profile" && (excluded == nil || !excluded(f.Function))
		}
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") && len(parts) < 4 {
			parts = append(parts, fmt.Sprintf("%s (%s:%d)", f.Function, f.File[strings.LastIndex(f.File, "/")+1:], f.Line))
		}
		if !more {
			break
		}
	}
	return strings.Join(parts, " <- "), counts
}
