package metal

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestSplitAttentionOnHarness lowers the split threshold so that the decode
// steps of a fixture run split-K attention (sdpa_split_* and sdpa_merge)
// on the cache formats, and compares the logits with the CPU executor
// (qwen2_moe: its logits move least when the 8-bit cache rounds a value the
// other way).
func TestSplitAttentionOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	defer func(n int) { sdpaSplitMin = n }(sdpaSplitMin)
	sdpaSplitMin = 4
	// By default the float and an 8-bit cache; with MLXMOE_SLOW=1 all four
	// (kernels/mslharness tests each format's kernel).
	formats := []kernels.KVFormat{kernels.KVF32, kernels.KVQ8}
	if slowTests() {
		formats = append(formats, kernels.KVF16, kernels.KVQ4)
	}
	for _, f := range formats {
		t.Run(f.String(), func(t *testing.T) {
			d, _ := compareKVFormat(t, "qwen2_moe-4bit", f)
			if d.dispatches["sdpa_split_"+f.String()] == 0 || d.dispatches["sdpa_merge"] == 0 {
				t.Errorf("the decode steps did not split attention: %s", d.summary())
			}
		})
	}
}
