package allocs

import (
	"runtime"
	"strings"
	"sync"
	"testing"
)

var sink []byte

//go:noinline
func allocate() { sink = make([]byte, 64+len(sink)%2) }

// An allocation of the code under test counts, with its site.
func TestSteadyCountsTheCodesAllocations(t *testing.T) {
	r := Steady(4, allocate, nil)
	if r.PerCall != 1 || len(r.Sites) != 1 || !strings.Contains(r.Sites[0], "allocs.allocate") {
		t.Fatalf("4 calls of one allocation each: %v", r)
	}
}

// An allocation whose first project function is excluded does not count.
func TestSteadyExcludes(t *testing.T) {
	r := Steady(4, allocate, func(fn string) bool { return strings.HasSuffix(fn, "allocs.allocate") })
	if r.PerCall != 0 {
		t.Fatalf("an excluded allocation counted: %v", r)
	}
}

// A worker pool's handoffs (a goroutine parked on a channel, the caller on
// a WaitGroup) make the runtime take sudogs, which it allocates when its
// caches run dry; collections empty the central cache, so a step that
// collects makes that happen within a few windows. None of it counts.
func TestSteadyIgnoresTheSchedulersBookkeeping(t *testing.T) {
	jobs := make(chan *sync.WaitGroup)
	defer close(jobs)
	go func() {
		for wg := range jobs {
			wg.Done()
		}
	}()
	var wg sync.WaitGroup
	step := func() {
		for range 1000 {
			wg.Add(1)
			jobs <- &wg
			wg.Wait()
		}
		runtime.GC()
	}
	step()
	if r := Steady(20, step, nil); r.PerCall != 0 {
		t.Fatalf("the scheduler's bookkeeping counted: %v", r)
	}
}
