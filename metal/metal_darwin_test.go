//go:build darwin

package metal

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// newMetal opens the Metal executor, skipping the test without a device.
func newMetal(t *testing.T) graph.Executor {
	t.Helper()
	e, err := New()
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { t.Logf("host ops %v", e.(*Executor).HostOps()) })
	return e
}

// TestFixturesOnMetal compares the Metal executor with the CPU executor on
// every fixture model: a prompt as one batch, then decode steps.
func TestFixturesOnMetal(t *testing.T) { checkFixtures(t, nil, newMetal, 8) }

// TestEmbeddedModelOnMetal does the same on the embedded trained model,
// with its experts resident and with them paged through the executor's
// SlotAllocator at a quarter of the experts per layer.
func TestEmbeddedModelOnMetal(t *testing.T) {
	dir, err := defaultmodel.Dir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ref := fixture.LoadReference(t, fixture.Dir(t, "models/"+defaultmodel.Name))
	prompt := ref.Heldout.Chunks[0].IDs[:64]
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := compareWithCPU(t, m, m, newMetal(t), prompt, 16)
	t.Logf("resident: prefill %.2g, decode %.2g", c.prefill, c.decode)
	if c.prefill > logitTol || c.decode > logitTol {
		t.Errorf("logits differ from the CPU executor: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
	}
}
