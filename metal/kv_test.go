package metal

import (
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestCompactKVOnHarness runs fixture models with half-precision, 8-bit
// and 4-bit KV caches (standard GQA attention with an output gate next to
// gated DeltaNet, and MLA's latent cache, whose values are a column range
// of its keys) on the shader harness and on the CPU executor with the same
// caches, and compares the logits: the stores must round as the CPU's, and
// the sdpa kernels must read the rows the CPU's AttentionKV reads.
func TestCompactKVOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	for _, name := range harnessModels(t, "qwen3_next-4bit", "deepseek_v3-hf-bf16") {
		if gptOSSFixture(name) {
			continue // TestGptOSSCompactKVOnHarness, on the fixture that suits it
		}
		for _, f := range []kernels.KVFormat{kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
			t.Run(name+"/"+f.String(), func(t *testing.T) { checkKVFormat(t, name, f) })
		}
	}
}

// checkKVFormat runs fixture name with f caches on the harness and the CPU.
func checkKVFormat(t *testing.T, name string, f kernels.KVFormat) {
	d, e := compareKVFormat(t, name, f)
	sdpa := "sdpa_"
	if gptOSSFixture(name) {
		sdpa = "sdpa_sinks_"
	}
	if d.dispatches["kv_store_"+f.String()] == 0 || d.dispatches[sdpa+f.String()] == 0 {
		t.Errorf("the %v caches were not stored and read by their kernels: %s", f, d.summary())
	}
	checkHostOps(t, e)
}

// compareKVFormat runs fixture name with f caches on the harness and the
// CPU (a prefill and two decode steps) and compares the logits.
func compareKVFormat(t *testing.T, name string, f kernels.KVFormat) (*harnessDevice, *Executor) {
	m, ref := loadFixture(t, name)
	m.KVFormat = f
	d := newHarnessDevice(t)
	e := newExecutor(d)
	c := compareWithCPU(t, m, m, e, ref.Prompts[0].IDs, 2)
	t.Logf("%d-token prefill max rel diff %.2g, %d decode steps %.2g; %s", len(ref.Prompts[0].IDs), c.prefill, c.steps, c.decode, d.summary())
	if c.prefill > logitTol || c.decode > logitTol {
		t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
	}
	return d, e
}

// TestKVCacheOps checks StoreKV through a column view after a prefix and
// CopyKV against the CPU executor's caches, bit for bit, in every format
// with kernels; and that float32 (no kernels), bad groups and out-of-range
// stores are errors, not panics.
func TestKVCacheOps(t *testing.T) {
	const rows, cols, n = 8, 96, 5
	for _, f := range []kernels.KVFormat{kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
		t.Run(f.String(), func(t *testing.T) {
			e := newExecutor(newHarnessDevice(t))
			ref := cpu.New()
			src := e.NewTensor(n, cols+32)
			for i := range src.Data {
				src.Data[i] = float32(i%97)*0.37 - 11
			}
			view := src.View(0, n, 16, cols)
			got, err := e.NewKV(rows, cols, f, 32)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.NewKV(rows, cols, f, 32)
			if err != nil {
				t.Fatal(err)
			}
			e.StoreKV(got, 2, view, n)
			ref.StoreKV(want, 2, view, n)
			snap, err := e.NewKV(rows, cols, f, 32)
			if err != nil {
				t.Fatal(err)
			}
			e.CopyKV(snap, got, 2+n)
			if err := e.Sync(); err != nil {
				t.Fatal(err)
			}
			same := func(a, b *graph.KV) bool {
				return slices.Equal(a.Half, b.Half) && slices.Equal(a.Q, b.Q) &&
					slices.Equal(a.Scales, b.Scales) && slices.Equal(a.Biases, b.Biases)
			}
			if !same(got, want) {
				t.Errorf("StoreKV: the cache differs from the CPU executor's")
			}
			if !same(snap, want) {
				t.Errorf("CopyKV: the copy differs from its source")
			}
			e.FreeKV(snap)
			if snap.Half != nil || snap.Q != nil || snap.Dev != nil {
				t.Errorf("FreeKV left the cache's storage in place")
			}
			e.StoreKV(got, rows-1, view, n)
			if err := e.Sync(); err == nil {
				t.Error("StoreKV past the cache's last row did not fail")
			}
			if err := e.Sync(); err != nil {
				t.Errorf("the error outlived its Sync: %v", err)
			}
		})
	}
	e := newExecutor(newHarnessDevice(t))
	if _, err := e.NewKV(rows, cols, kernels.KVF32, 0); err == nil {
		t.Error("NewKV(f32) did not fail: float32 caches are tensors")
	}
	if _, err := e.NewKV(rows, cols, kernels.KVQ8, 36); err == nil {
		t.Error("NewKV(q8) with a group of 36 did not fail")
	}
	if _, err := e.NewKV(0, cols, kernels.KVF16, 0); err == nil {
		t.Error("NewKV with no rows did not fail")
	}
}
