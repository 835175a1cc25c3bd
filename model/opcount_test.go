package model_test

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/graph/graphtest"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// decodeSteps runs warm decode steps on a fresh runner and cache: two
// warm-up tokens, then step() decodes one more each call.
func decodeSteps(t *testing.T, m *model.Model, e graph.Executor, maxLen int) (step func()) {
	t.Helper()
	rn := model.NewRunner(m, e)
	c := m.NewCache(e, maxLen)
	ids := []int32{1}
	step = func() {
		if c.Len == c.MaxLen {
			c.Len = 0
		}
		if _, err := rn.Forward(c, ids, false); err != nil {
			t.Fatal(err)
		}
		ids[0] = ids[0]%7 + 1
	}
	step()
	step()
	return step
}

// TestDecodeStepOps checks, on every fixture, that a decode step issues no
// NewTensor (scratch is planned when the runner is made) and no column
// copy (heads are read in place), and logs the step's ops.
func TestDecodeStepOps(t *testing.T) {
	forEachFixture(t, func(t *testing.T, name string, m *model.Model) {
		ce := graphtest.NewCounting(cpu.New())
		step := decodeSteps(t, m, ce, 16)
		ce.Reset()
		step()
		t.Logf("%s: one decode step, %d ops: %v", name, ce.Total(), ce.Ops)
		if n := ce.Ops["NewTensor"]; n != 0 {
			t.Errorf("a decode step allocated %d tensors", n)
		}
		if n := ce.Ops["CopyCols"]; n != 0 {
			t.Errorf("a decode step copied columns %d times", n)
		}
	})
}

// forEachFixture runs f as a subtest on every fixture model.
func forEachFixture(t *testing.T, f func(t *testing.T, name string, m *model.Model)) {
	for _, name := range fixture.Names(t) {
		t.Run(name, func(t *testing.T) {
			m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			f(t, name, m)
		})
	}
}

// TestDecodeStepAllocatesNothing checks that the runner and the model's
// blocks allocate no Go memory in a warm decode step on any fixture. The
// executor is graphtest.Null, so what is measured is model code only (the
// CPU executor's kernels are measured by their own benchmarks); the CPU
// executor's figure is logged.
func TestDecodeStepAllocatesNothing(t *testing.T) {
	forEachFixture(t, func(t *testing.T, name string, m *model.Model) {
		if a := testing.AllocsPerRun(20, decodeSteps(t, m, graphtest.Null{}, 64)); a != 0 {
			t.Errorf("a decode step made %.1f heap allocations in model code", a)
		}
		t.Logf("%s: %.1f heap allocations per decode step with the CPU executor (kernels included)",
			name, testing.AllocsPerRun(5, decodeSteps(t, m, cpu.New(), 64)))
	})
}

// TestPagedDecodeStepAllocatesNothing is TestDecodeStepAllocatesNothing for
// experts taken from the pager's slots: with room for every expert, a warm
// decode step only hits, and neither the model's expert set nor the pager
// allocates for a hit.
func TestPagedDecodeStepAllocatesNothing(t *testing.T) {
	for _, name := range fixture.Names(t) {
		t.Run(name, func(t *testing.T) {
			m, err := model.LoadWith(fixture.Dir(t, "fixtures/"+name), model.LoadOptions{LazyExperts: true})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			sources := m.ExpertSources()
			if len(sources) == 0 {
				t.Skip("no routed experts")
			}
			p, err := experts.New(experts.Config{Layers: m.PagerLayers(), Capacity: sources[0].Count, Policy: experts.Exact})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if err := m.AttachPager(p); err != nil {
				t.Fatal(err)
			}
			step := decodeSteps(t, m, graphtest.Null{}, 64)
			for range 8 { // every token id the steps use, so every routed expert is resident
				step()
			}
			if a := testing.AllocsPerRun(20, step); a != 0 {
				t.Errorf("a paged decode step made %.1f heap allocations", a)
			}
		})
	}
}
