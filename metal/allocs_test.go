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

// TestDecodeStepAllocatesNothing runs warm decode steps of fixtures with the executor on the shader harness and checks that they
// make no Go heap allocation outside the harness device, which stands in
// for the GPU (it copies every binding to a runner process and back): the
// executor's own encoding and the model code allocate nothing per token,
// as model/opcount_test.go checks for the CPU executor. Allocations are
// told apart by their stacks in a memory profile of every allocation.
func TestDecodeStepAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	// By default a MoE and an MLA model with dense bf16 weights (host
	// fallbacks); every fixture with MLXMOE_SLOW=1.
	for _, name := range harnessModels(t, "qwen3_moe-3bit-g32", "deepseek_v3-hf-bf16") {
		t.Run(name, func(t *testing.T) { checkFixtureDecodeAllocs(t, name, newExecutor(newHarnessDevice(t))) })
	}
}

// TestEventDecodeStepAllocatesNothing does the same for decode steps in the
// event form: experts paged through the executor's SlotAllocator with room
// for all of them, so that after warm-up every layer resolves inside the
// command buffer. The handoffs run inside the harness device's commit; what
// they allocate counts (see describeStack).
func TestEventDecodeStepAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	const name = "qwen3_moe-4bit"
	dir := fixture.Dir(t, "fixtures/"+name)
	dev := newHarnessDevice(t)
	dev.deferAll = true // work runs at commit, as on a GPU
	e := newExecutor(dev)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	experts := m.Config.NumExperts
	m.Close()
	got, _ := loadPagedWith(t, dir, experts, e.SlotAllocator())
	before := e.eventMoEs
	checkDecodeAllocs(t, got, e, 12)
	if e.eventMoEs == before {
		t.Fatalf("no decode MoE ran in the event form: %s", dev.summary())
	}
}

// checkFixtureDecodeAllocs is checkDecodeAllocs on fixture name.
func checkFixtureDecodeAllocs(t *testing.T, name string, e graph.Executor) {
	m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkDecodeAllocs(t, m, e, 2)
}

// checkDecodeAllocs fails when a decode step of m on e, after warm
// warm-up steps, makes a heap allocation outside the harness device.
func checkDecodeAllocs(t *testing.T, m *model.Model, e graph.Executor, warm int) {
	rn := model.NewRunner(m, e)
	c := m.NewCache(e, warm+12)
	ids := []int32{1}
	step := func() {
		if _, err := rn.Forward(c, ids, false); err != nil {
			t.Fatal(err)
		}
		ids[0] = ids[0]%7 + 1
	}
	for range warm {
		step()
	}
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
		if device || site == "" {
			// site "": every frame is the runtime's own (a background
			// goroutine's stack, say), no code of a decode step.
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
// and whether the allocation is the harness device's (or the
// measurement's own): whether, from the allocation outwards, the first of
// this project's functions is the device's. A handoff that the device runs
// in its commit is the executor's code, and counts.
func describeStack(stk stackKey) (site string, device bool) {
	frames := runtime.CallersFrames(stk[:])
	var parts []string
	decided := false
	for {
		f, more := frames.Next()
		if !decided && strings.HasPrefix(f.Function, "github.com/mlx-moe/mlx-moe/") {
			decided = true
			device = strings.Contains(f.Function, "metal.(*harnessDevice)") || strings.Contains(f.Function, "kernels/mslharness.") ||
				strings.Contains(f.Function, "metal.allocProfile")
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
