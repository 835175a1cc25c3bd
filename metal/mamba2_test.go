package metal

import "testing"

// TestGraniteOnHarness runs the Granite fixtures (Mamba-2 layers, the
// multipliers, no-rope attention) through the shader harness against the
// CPU executor; every op must run on a kernel. The hybrid MLX fixture runs
// by default, the rest with MLXMOE_SLOW=1 (TestFixturesOnHarness takes
// every fixture then too).
func TestGraniteOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("whole models on the shader harness")
	}
	checkFixtures(t, harnessModels(t, "granitemoehybrid-4bit", "granitemoehybrid-hf-bf16", "granitemoe-4bit", "granitemoe-hf-bf16"), newHarnessExecutor, 2)
}
