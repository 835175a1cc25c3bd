package metal

import "testing"

// TestJambaOnHarness runs the Mamba-1 kernels' encoding (conv with bias,
// the scan over B and C views of x_proj's output) and attention without
// rotary embedding on the jamba fixture through the shader harness,
// against the CPU executor. Under MLXMOE_SLOW=1 TestFixturesOnHarness runs
// every fixture, this one included.
func TestJambaOnHarness(t *testing.T) {
	if testing.Short() || slowTests() {
		t.Skip("whole models on the shader harness (under " + slowEnv + "=1: TestFixturesOnHarness)")
	}
	checkFixtures(t, []string{"jamba-4bit"}, newHarnessExecutor, 3)
}
