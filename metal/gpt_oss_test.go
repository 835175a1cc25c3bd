package metal

import (
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// gptOSSFixture reports whether a fixture is gpt-oss's. Its clamped
// experts have no slot (event-form) kernels yet, so the event-form tests
// leave it out; TestFixturesOnHarness, TestPagedExpertsOnHarness and the
// compact-KV tests run it.
func gptOSSFixture(name string) bool { return strings.HasPrefix(name, "gpt_oss") }

// TestGptOSSCompactKVOnHarness runs gpt-oss (sinks, sliding-window layers)
// with half-precision, 8-bit and 4-bit KV caches on the shader harness and
// on the CPU executor with the same caches (TestCompactKVOnHarness's
// check). The gpt-oss fixtures' routers flip on the least change: the
// harness's float32 differences (2.8e-6 relative on the bf16 fixture's
// logits) move a value across a quantization boundary now and then, and
// on the CPU a 3e-6 relative change of the stored keys and values moves
// the last logits by up to 0.01 at 8 bits. gpt_oss-hf-mxfp4 stays within
// the tolerance on the harness; gpt_oss-hf-bf16 (0.05 at 8 bits) does not,
// so TestCompactKVOnHarness leaves the family to this test.
func TestGptOSSCompactKVOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole model on the shader harness")
	}
	for _, f := range []kernels.KVFormat{kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
		t.Run(f.String(), func(t *testing.T) { checkKVFormat(t, "gpt_oss-hf-mxfp4", f) })
	}
}
