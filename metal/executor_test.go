package metal

import (
	"os"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// harnessFixtures are the fixtures TestFixturesOnHarness runs by default:
// between them every kernel the executor launches and its host fallbacks
// (gated DeltaNet and sigmoid gates; MLA with grouped, biased sigmoid
// routing and dense bf16 weights; 3-bit groups of 32; attention biases).
// Each takes tens of seconds, because every dispatch is a process;
// METAL_HARNESS=all runs all of them.
var harnessFixtures = []string{"qwen3_next-4bit", "deepseek_v3-hf-bf16", "qwen3_moe-3bit-g32", "qwen2_moe-4bit"}

// newHarnessExecutor is an executor over the shader harness that logs what
// ran when the test ends.
func newHarnessExecutor(t *testing.T) graph.Executor {
	d := newHarnessDevice(t)
	e := newExecutor(d)
	t.Cleanup(func() { t.Logf("%s; host ops %v", d.summary(), e.HostOps()) })
	return e
}

// TestFixturesOnHarness runs the executor's encoding of fixture models
// through the shaders compiled for the CPU and compares the logits with the
// CPU executor.
func TestFixturesOnHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process: minutes")
	}
	names := harnessFixtures
	if os.Getenv("METAL_HARNESS") == "all" {
		names = nil
	}
	checkFixtures(t, names, newHarnessExecutor, 2)
}

// TestEmbeddedModelOnHarness runs the embedded trained model (Qwen3-Next
// shaped) through the shader harness, resident and paged. It takes a few
// minutes, so it runs with METAL_HARNESS=all only; the fixtures cover the
// same kernels.
func TestEmbeddedModelOnHarness(t *testing.T) {
	if os.Getenv("METAL_HARNESS") != "all" {
		t.Skip("minutes on the shader harness: set METAL_HARNESS=all")
	}
	checkEmbeddedModel(t, newHarnessExecutor, 32, 3)
}

// halfGrid launches the quantized matrix-vector kernels over half their
// threadgroups: the planted encoding error of TestHarnessCatchesWrongEncoding.
type halfGrid struct{ device }

func (h halfGrid) dispatch(kernel string, groups, threads [3]int, args []binding) error {
	if strings.HasPrefix(kernel, "qmv_") || strings.HasPrefix(kernel, "qmm_") {
		groups[0] = max(groups[0]/2, 1)
	}
	return h.device.dispatch(kernel, groups, threads, args)
}

// TestHarnessCatchesWrongEncoding checks that the comparison with the CPU
// executor fails when the executor's launches are wrong.
func TestHarnessCatchesWrongEncoding(t *testing.T) {
	if testing.Short() {
		t.Skip("the shader harness runs each dispatch as a process")
	}
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := newExecutor(halfGrid{newHarnessDevice(t)})
	c := compareWithCPU(t, m, m, e, fixture.LoadReference(t, dir).Prompts[0].IDs, 1)
	t.Logf("with half the qmv grid: prefill %.3g, decode %.3g", c.prefill, c.decode)
	if c.prefill <= logitTol || c.decode <= logitTol {
		t.Errorf("a planted grid error went unnoticed: prefill %.3g, decode %.3g (tolerance %g)", c.prefill, c.decode, logitTol)
	}
}
