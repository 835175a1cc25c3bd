package metal

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestDecodeStepAllocatesNothing runs warm decode steps of the harness
// fixtures with the executor on the shader harness and checks that they
// make no Go heap allocation outside the harness device, which stands in
// for the GPU (it copies every binding to a runner process and back): the
// executor's own encoding and the model code allocate nothing per token,
// as model/opcount_test.go checks for the CPU executor. Allocations are
// told apart by their stacks in a memory profile of every allocation.
func TestDecodeStepAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	for _, name := range harnessModels(t, harnessFixtures...) {
		t.Run(name, func(t *testing.T) { checkDecodeAllocs(t, name, newExecutor(newHarnessDevice(t))) })
	}
}

// checkDecodeAllocs fails when a warm decode step of fixture name on e
// makes a heap allocation outside the harness device.
func checkDecodeAllocs(t *testing.T, name string, e graph.Executor) {
	m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rn := model.NewRunner(m, e)
	c := m.NewCache(e, 16)
	ids := []int32{1}
	step := func() {
		if _, err := rn.Forward(c, ids, false); err != nil {
			t.Fatal(err)
		}
		ids[0] = ids[0]%7 + 1
	}
	step()
	step()
	// Up to three windows, as internal/allocs.Steady: one-time runtime
	// growth (an interface table met for the first time) can land in the
	// first.
	const runs = 3
	var n int64
	var sites []string
	for window := 0; window < 3; window++ {
		if n, sites = allocsOutsideDevice(runs, step); n == 0 {
			break
		}
	}
	if n > 0 {
		t.Errorf("a decode step made %.1f heap allocations outside the harness device:\n%s", float64(n)/runs, strings.Join(sites, "\n"))
	} else {
		t.Logf("%d decode steps: no heap allocation outside the harness device", runs)
	}
}

// allocsOutsideDevice runs step runs times with every allocation profiled
// and returns how many allocations were made on a stack that does not pass
// through the harness device or kernels/mslharness, with the sites that
// made them (innermost frames outside the runtime).
func allocsOutsideDevice(runs int, step func()) (int64, []string) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	before := allocProfile()
	for range runs {
		step()
	}
	after := allocProfile()
	var total int64
	bySite := map[string]int64{}
	for stk, n := range after {
		n -= before[stk]
		if n <= 0 {
			continue
		}
		site, device := describeStack(stk)
		if device {
			continue
		}
		total += n
		bySite[site] += n
	}
	var sites []string
	for s, n := range bySite {
		sites = append(sites, fmt.Sprintf("  %d at %s", n, s))
	}
	sort.Strings(sites)
	return total, sites
}

type stackKey [32]uintptr

// allocProfile returns the objects allocated so far per stack. A record
// reaches the profile at the end of a garbage collection cycle, so two
// cycles run first.
func allocProfile() map[stackKey]int64 {
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
	m := make(map[stackKey]int64, len(recs))
	for _, r := range recs {
		m[r.Stack0] += r.AllocObjects
	}
	return m
}

// describeStack returns the innermost frames of stk outside the runtime,
// and whether the stack passes through the harness device (or is the
// measurement's own).
func describeStack(stk stackKey) (site string, device bool) {
	frames := runtime.CallersFrames(stk[:])
	var parts []string
	for {
		f, more := frames.Next()
		if strings.Contains(f.Function, "metal.(*harnessDevice)") || strings.Contains(f.Function, "kernels/mslharness.") ||
			strings.Contains(f.Function, "metal.allocProfile") {
			device = true
		}
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") && len(parts) < 4 {
			parts = append(parts, fmt.Sprintf("%s (%s:%d)", f.Function, f.File[strings.LastIndex(f.File, "/")+1:], f.Line))
		}
		if !more {
			break
		}
	}
	return strings.Join(parts, " <- "), device
}

var allocSink []byte

// The measurement sees an allocation made outside the device.
func TestAllocsOutsideDeviceCounts(t *testing.T) {
	n, sites := allocsOutsideDevice(4, func() { allocSink = make([]byte, 64+len(allocSink)%2) })
	if n != 4 {
		t.Fatalf("4 steps of one allocation each counted %d allocations: %v", n, sites)
	}
}
