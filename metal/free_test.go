package metal

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/graph/graphtest"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestCacheFreeReleasesBuffers checks on the harness device's live-buffer
// count that a cache's buffers (KV, linear-attention state, latent cache)
// go back to the device when the cache is freed. No kernel runs, so the
// shaders are not compiled.
func TestCacheFreeReleasesBuffers(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "deepseek_v3-hf-bf16"} {
		t.Run(name, func(t *testing.T) {
			m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			d := &harnessDevice{dispatches: map[string]int{}}
			e := newExecutor(d)
			before := d.live
			c := m.NewCache(e, 16)
			if d.live == before {
				t.Fatal("a cache allocated no buffers")
			}
			c.Free(e)
			if err := e.Sync(); err != nil {
				t.Fatal(err)
			}
			if d.live != before {
				t.Fatalf("%d buffers live after freeing the cache, %d before it was made", d.live, before)
			}
		})
	}
}

// TestDecodeStepAllocatesNoBuffers runs warm decode steps of the
// Qwen3-Next fixture through the shader harness and checks that a step
// makes no tensor (NewTensor) and allocates no device buffer.
func TestDecodeStepAllocatesNoBuffers(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	m, err := model.Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := newHarnessDevice(t)
	ce := graphtest.NewCounting(newExecutor(d))
	rn := model.NewRunner(m, ce)
	c := m.NewCache(ce, 8)
	ids := []int32{1}
	for i := 0; i < 3; i++ {
		if i == 2 {
			ce.Reset()
			d.allocs = 0
		}
		if _, err := rn.Forward(c, ids, false); err != nil {
			t.Fatal(err)
		}
		ids[0]++
	}
	if ce.Ops["NewTensor"] != 0 || d.allocs != 0 {
		t.Fatalf("a warm decode step made %d tensors and %d device buffers", ce.Ops["NewTensor"], d.allocs)
	}
	t.Logf("one decode step: %d ops, %s", ce.Total(), d.summary())
}
