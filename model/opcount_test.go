package model_test

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/graph/graphtest"
	"github.com/mlx-moe/mlx-moe/internal/allocs"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// decodeSteps runs warm decode steps on a fresh runner and cache: two
// warm-up tokens, then step() decodes one more each call.
func decodeSteps(t *testing.T, m *model.Model, e graph.Executor, maxLen int) (step func()) {
	return batchDecodeSteps(t, m, e, maxLen, 1)
}

// batchDecodeSteps is decodeSteps for seqs sequences decoded together:
// each step is one ForwardBatch of one token per sequence (Forward for
// one), each sequence's last-position logits asked for.
func batchDecodeSteps(t *testing.T, m *model.Model, e graph.Executor, maxLen, seqs int) (step func()) {
	t.Helper()
	rn := model.NewRunner(m, e)
	segs := make([]model.Segment, seqs)
	for i := range segs {
		segs[i] = model.Segment{Cache: m.NewCache(e, maxLen), IDs: []int32{int32(i + 1)}, Logits: make([]float32, m.Config.VocabSize)}
	}
	step = func() {
		for _, s := range segs {
			if s.Cache.Len == s.Cache.MaxLen {
				s.Cache.Len = 0
			}
		}
		var err error
		if seqs == 1 {
			_, err = rn.Forward(segs[0].Cache, segs[0].IDs, false)
		} else {
			err = rn.ForwardBatch(segs)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			s.IDs[0] = s.IDs[0]%7 + 1
		}
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

// TestDecodeStepAllocatesNothing checks that a warm decode step allocates
// no Go memory on any fixture, for one sequence and for four decoded
// together: with graphtest.Null (model code alone) and with the CPU
// executor, kernels and worker pool included. A failure names the
// allocating sites.
func TestDecodeStepAllocatesNothing(t *testing.T) {
	forEachFixture(t, func(t *testing.T, name string, m *model.Model) {
		for _, seqs := range []int{1, 4} {
			if a := testing.AllocsPerRun(20, batchDecodeSteps(t, m, graphtest.Null{}, 64, seqs)); a != 0 {
				t.Errorf("a decode step of %d sequences made %.1f heap allocations in model code", seqs, a)
			}
			step := batchDecodeSteps(t, m, cpu.New(), 64, seqs)
			// Warm up over a whole cache (attention's scratch grows with
			// the position; a batch's experts group in more ways).
			for range 64 {
				step()
			}
			// Ten steps a window: the kernels' recycled scratch reaches its
			// largest size over the first steps (routing differs per token).
			r := allocs.Steady(10, step, nil)
			t.Logf("%s: %.1f heap allocations per decode step of %d sequences with the CPU executor", name, r.PerCall, seqs)
			if r.PerCall > 0 {
				t.Errorf("a decode step of %d sequences with the CPU executor: %v", seqs, r)
			}
		}
	})
}

// TestPagedDecodeStepAllocatesNothing is TestDecodeStepAllocatesNothing for
// experts taken from the pager's slots: with room for every expert, a warm
// decode step only hits, and neither the model's expert set nor the pager
// allocates for a hit.
func TestPagedDecodeStepAllocatesNothing(t *testing.T) {
	for _, name := range fixture.Names(t) {
		t.Run(name, func(t *testing.T) {
			m, _ := loadPaged(t, fixture.Dir(t, "fixtures/"+name), func(experts int) int { return experts })
			for _, seqs := range []int{1, 4} {
				step := batchDecodeSteps(t, m, graphtest.Null{}, 64, seqs)
				for range 8 { // every token id the steps use, so every routed expert is resident
					step()
				}
				if a := testing.AllocsPerRun(20, step); a != 0 {
					t.Errorf("a paged decode step of %d sequences made %.1f heap allocations", seqs, a)
				}
			}
		})
	}
}

// loadPaged loads the checkpoint in dir with its routed experts paged
// (exact policy, capacity(experts in a layer) slots a layer); the model and
// pager are closed when the test ends. It skips a model without routed
// experts.
func loadPaged(t testing.TB, dir string, capacity func(experts int) int) (*model.Model, *experts.Pager) {
	t.Helper()
	m, err := model.LoadWith(dir, model.LoadOptions{LazyExperts: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	sources := m.ExpertSources()
	if len(sources) == 0 {
		t.Skip("no routed experts")
	}
	p, err := experts.New(experts.Config{Layers: m.PagerLayers(), Capacity: capacity(sources[0].Count), Policy: experts.Exact})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := m.AttachPager(p); err != nil {
		t.Fatal(err)
	}
	return m, p
}
