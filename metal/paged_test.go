package metal

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// loadPaged loads the checkpoint in dir with its routed experts paged by an
// exact-policy pager of capacity slots per layer whose memory comes from
// alloc.
func loadPaged(t *testing.T, dir string, capacity int, alloc experts.SlotAllocator) *model.Model {
	t.Helper()
	m, _ := loadPagedWith(t, dir, capacity, alloc)
	return m
}

// loadPagedWith is loadPaged that also returns the pager.
func loadPagedWith(t *testing.T, dir string, capacity int, alloc experts.SlotAllocator) (*model.Model, *experts.Pager) {
	t.Helper()
	m, err := model.LoadWith(dir, model.LoadOptions{LazyExperts: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	sources := m.ExpertSources()
	if len(sources) == 0 {
		t.Fatalf("%s has no routed experts", dir)
	}
	p, err := experts.New(experts.Config{Layers: m.PagerLayers(), Capacity: capacity, Policy: experts.Exact, Allocator: alloc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := m.AttachPager(p); err != nil {
		t.Fatal(err)
	}
	return m, p
}

// slotBindings counts the bindings that land inside slot pools.
type slotBindings struct {
	device
	e     *Executor
	slots map[*buffer]bool
	hits  int
}

func (s *slotBindings) dispatch(kernel string, groups, threads [3]int, args []binding) error {
	for _, a := range args {
		if s.slots[a.buf] {
			s.hits++
		}
	}
	return s.device.dispatch(kernel, groups, threads, args)
}

// TestPagedExpertsOnHarness runs a fixture with its experts paged at a
// capacity that forces several Resolve groups per prefill and evictions
// every step, through the executor's SlotAllocator, and checks that the
// logits match the CPU executor with resident experts and that the expert
// kernels read the slot pools in place.
func TestPagedExpertsOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	for _, name := range slotModels(t, "qwen3_next-4bit", "qwen3_moe-4bit") {
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			want, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer want.Close()
			counter := &slotBindings{device: newHarnessDevice(t), slots: map[*buffer]bool{}}
			e := newExecutor(counter)
			alloc := recordingAllocator{e.SlotAllocator(), e, counter.slots}
			topK := want.Config.NumExpertsPerTok
			got := loadPaged(t, dir, topK, alloc)
			c := compareWithCPU(t, want, got, e, fixture.LoadReference(t, dir).Prompts[0].IDs, 3)
			t.Logf("capacity %d: prefill %.2g, decode %.2g; %d bindings into slot pools; host ops %v", topK, c.prefill, c.decode, counter.hits, e.HostOps())
			if c.prefill > logitTol || c.decode > logitTol {
				t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
			}
			if counter.hits == 0 {
				t.Errorf("no kernel bound a slot pool: experts were copied instead of read in place")
			}
		})
	}
}

// recordingAllocator notes the buffers of the slot pools it hands out.
type recordingAllocator struct {
	experts.SlotAllocator
	e     *Executor
	slots map[*buffer]bool
}

func (r recordingAllocator) Alloc(layer int, kind experts.BufferKind, n int64) ([]byte, error) {
	b, err := r.SlotAllocator.Alloc(layer, kind, n)
	if err != nil {
		return nil, err
	}
	buf, off, ok := r.e.regions.find(uintptr(unsafe.Pointer(&b[0])), len(b))
	if !ok || off != 0 {
		return nil, fmt.Errorf("slot buffer of layer %d is not a device buffer", layer)
	}
	r.slots[buf] = true
	return b, nil
}

// partialSet wraps a layer's experts: under dropEvery > 0 every expert whose
// id is a multiple of dropEvery is reported missing (the fast policy's
// misses); limit is its MaxResolve.
type partialSet struct {
	graph.ExpertSet
	dropEvery int32
	limit     int
}

func (p partialSet) MaxResolve() int { return p.limit }

func (p partialSet) Resolve(ids []int32) ([]bool, error) {
	present, err := p.ExpertSet.Resolve(ids)
	for i, id := range ids {
		if p.dropEvery > 0 && id%p.dropEvery == 0 {
			present[i] = false
		}
	}
	return present, err
}

// TestExpertPolicyPathsOnHarness covers the MoE paths the resident fixtures
// do not: missing experts (weights renormalised over the present ones, the
// fast policy) and a Resolve limit below top-k, which splits even a decode
// step into several Resolve groups. The CPU executor runs the same wrapped
// experts.
func TestExpertPolicyPathsOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	for _, name := range harnessModels(t, "qwen3_moe-4bit") {
		dir := fixture.Dir(t, "fixtures/"+name)
		prompt := fixture.LoadReference(t, dir).Prompts[0].IDs
		for _, tc := range []struct {
			name      string
			dropEvery int32
			limit     int
		}{{"missing experts", 3, 0}, {"resolve limit 2", 0, 2}} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				m, err := model.Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				for l, layer := range m.Layers {
					if moe, ok := layer.FFN.(*model.MoE); ok {
						if err := m.AttachExperts(l, partialSet{moe.Experts, tc.dropEvery, tc.limit}); err != nil {
							t.Fatal(err)
						}
					}
				}
				c := compareWithCPU(t, m, m, newHarnessExecutor(t), prompt, 2)
				t.Logf("prefill %.2g, decode %.2g", c.prefill, c.decode)
				if c.prefill > logitTol || c.decode > logitTol {
					t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
				}
			})
		}
	}
}
