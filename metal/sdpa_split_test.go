package metal

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestSplitAttentionOnHarness lowers the split threshold so that the decode
// steps of a fixture run split-K attention (sdpa_split_* and sdpa_merge)
// on every cache format, and compares the logits with the CPU executor
// (qwen2_moe: its logits move least when the 8-bit cache rounds a value the
// other way).
func TestSplitAttentionOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	defer func(n int) { sdpaSplitMin = n }(sdpaSplitMin)
	sdpaSplitMin = 4
	for _, f := range []kernels.KVFormat{kernels.KVF32, kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
		t.Run(f.String(), func(t *testing.T) {
			m, ref := loadFixture(t, "qwen2_moe-4bit")
			m.KVFormat = f
			d := newHarnessDevice(t)
			e := newExecutor(d)
			c := compareWithCPU(t, m, m, e, ref.Prompts[0].IDs, 2)
			t.Logf("%d-token prefill max rel diff %.2g, %d decode steps %.2g; %s", len(ref.Prompts[0].IDs), c.prefill, c.steps, c.decode, d.summary())
			if c.prefill > logitTol || c.decode > logitTol {
				t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
			}
			if d.dispatches["sdpa_split_"+f.String()] == 0 || d.dispatches["sdpa_merge"] == 0 {
				t.Errorf("the decode steps did not split attention: %s", d.summary())
			}
		})
	}
}
