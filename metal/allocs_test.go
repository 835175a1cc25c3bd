package metal

import (
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/allocs"
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
	const runs = 3
	if r := allocs.Steady(runs, step, isDevice); r.PerCall > 0 {
		t.Errorf("a decode step, outside the harness device: %v", r)
	} else {
		t.Logf("%d decode steps: no heap allocation outside the harness device", runs)
	}
}

// isDevice reports whether function is the harness device's, standing in
// for the GPU: an allocation whose first function of this project, from
// the allocation outwards, is the device's does not count. A handoff that
// the device runs in its commit is the executor's code, and counts.
func isDevice(function string) bool {
	return strings.Contains(function, "metal.(*harnessDevice)") || strings.Contains(function, "kernels/mslharness.")
}
