package metal

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
)

// TestFixturesOnHarness runs the executor's encoding of every fixture model
// through the shaders compiled for the CPU and compares the logits with the
// CPU executor.
func TestFixturesOnHarness(t *testing.T) {
	checkFixtures(t, func(t *testing.T) graph.Executor {
		d := newHarnessDevice(t)
		e := newExecutor(d)
		t.Cleanup(func() { t.Logf("%s; host ops %v", d.summary(), e.HostOps()) })
		return e
	}, 2)
}
