package metal

import "testing"

// TestPhiMoEOnHarness runs a PhiMoE fixture (LayerNorm with bias,
// sparsemixer routing, biased attention and head, LongRoPE) through the
// shader harness against the CPU executor, with no op on the host that
// has a kernel.
func TestPhiMoEOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	checkFixtures(t, []string{"phimoe-4bit"}, newHarnessExecutor, 2)
}
