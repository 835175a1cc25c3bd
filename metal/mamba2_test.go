package metal

import "testing"

// TestGraniteOnHarness runs the Granite fixtures (Mamba-2 layers, the
// multipliers, no-rope attention) through the shader harness against the
// CPU executor; every op must run on a kernel. Under MLXMOE_SLOW=1
// TestFixturesOnHarness runs them with every other fixture.
func TestGraniteOnHarness(t *testing.T) {
	if testing.Short() || slowTests() {
		t.Skip("whole models on the shader harness (under " + slowEnv + "=1: TestFixturesOnHarness)")
	}
	checkFixtures(t, []string{"granitemoehybrid-4bit", "granitemoehybrid-hf-bf16", "granitemoe-4bit", "granitemoe-hf-bf16"}, newHarnessExecutor, 2)
}
