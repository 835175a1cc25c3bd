package metal

import (
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestHalfKVOnHarness runs fixture models with half-precision KV caches
// (standard GQA attention with an output gate next to gated DeltaNet, and
// MLA's latent cache, whose values are a column range of its keys) on the
// shader harness and on the CPU executor with the same caches, and
// compares the logits: the stores must round exactly as the CPU's, and
// sdpa_f16 must read the rows the CPU's AttentionKV reads.
func TestHalfKVOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	for _, name := range harnessModels(t, "qwen3_next-4bit", "deepseek_v3-hf-bf16") {
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			ref := fixture.LoadReference(t, dir)
			m, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.KVFormat = kernels.KVF16
			d := newHarnessDevice(t)
			e := newExecutor(d)
			c := compareWithCPU(t, m, m, e, ref.Prompts[0].IDs, 2)
			t.Logf("%d-token prefill max rel diff %.2g, %d decode steps %.2g; %s", len(ref.Prompts[0].IDs), c.prefill, c.steps, c.decode, d.summary())
			if c.prefill > logitTol || c.decode > logitTol {
				t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
			}
			if d.dispatches["kv_store_f16"] == 0 || d.dispatches["sdpa_f16"] == 0 {
				t.Errorf("the half caches were not stored and read by their kernels: %s", d.summary())
			}
			checkHostOps(t, e)
		})
	}
}

// TestKVCacheOps checks StoreKV through a column view, CopyKV and the
// host fallback's view of the cache against the CPU executor, and that
// formats without kernels and out-of-range stores are errors, not panics.
func TestKVCacheOps(t *testing.T) {
	e := newExecutor(newHarnessDevice(t))
	ref := cpu.New()
	const rows, cols, n = 8, 96, 5
	src := e.NewTensor(n, cols+32)
	for i := range src.Data {
		src.Data[i] = float32(i%97)*0.37 - 11
	}
	view := src.View(0, n, 16, cols)
	got, err := e.NewKV(rows, cols, kernels.KVF16, 0)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.NewKV(rows, cols, kernels.KVF16, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.StoreKV(got, 2, view, n)
	ref.StoreKV(want, 2, view, n)
	snap, err := e.NewKV(rows, cols, kernels.KVF16, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.CopyKV(snap, got, 2+n)
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Half, want.Half) {
		t.Errorf("StoreKV: the half cache differs from the CPU executor's")
	}
	if !slices.Equal(snap.Half[:(2+n)*cols], want.Half[:(2+n)*cols]) {
		t.Errorf("CopyKV: the copy differs from its source")
	}
	e.FreeKV(snap)
	if snap.Half != nil || snap.Dev != nil {
		t.Errorf("FreeKV left the cache's storage in place")
	}

	for _, f := range []kernels.KVFormat{kernels.KVQ8, kernels.KVQ4, kernels.KVF32} {
		if _, err := e.NewKV(rows, cols, f, 32); err == nil {
			t.Errorf("NewKV(%v) did not fail: there are no kernels for it", f)
		}
	}
	if _, err := e.NewKV(0, cols, kernels.KVF16, 0); err == nil {
		t.Error("NewKV with no rows did not fail")
	}
	e.StoreKV(got, rows-1, view, n)
	if err := e.Sync(); err == nil {
		t.Error("StoreKV past the cache's last row did not fail")
	}
	if err := e.Sync(); err != nil {
		t.Errorf("the error outlived its Sync: %v", err)
	}
}
