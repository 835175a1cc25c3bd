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
// check, which runs gpt-oss only with MLXMOE_SLOW=1).
func TestGptOSSCompactKVOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole model on the shader harness")
	}
	for _, f := range []kernels.KVFormat{kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
		t.Run(f.String(), func(t *testing.T) { checkKVFormat(t, "gpt_oss-hf-mxfp4", f) })
	}
}
