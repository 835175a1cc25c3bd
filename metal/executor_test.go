package metal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
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
// With MLXMOE_SLOW=1 it runs all of them.
var harnessFixtures = []string{"qwen3_next-4bit", "deepseek_v3-hf-bf16", "qwen3_moe-3bit-g32", "qwen2_moe-4bit"}

// slowEnv, set to 1, turns on the exhaustive harness passes: every fixture
// and the embedded model through every path. Seconds each, but minutes in
// all on a small CI machine, so .ci/run runs them as a step of their own;
// by default each path runs on the fixtures that exercise it.
const slowEnv = "MLXMOE_SLOW"

func slowTests() bool { return os.Getenv(slowEnv) == "1" }

// harnessModels returns the fixtures a harness test of one of the
// executor's paths runs: base by default; under MLXMOE_SLOW=1 base and a
// fixture of every other model type too (TestFixturesOnHarness runs every
// fixture then).
func harnessModels(t *testing.T, base ...string) []string {
	return pickModels(t, func(string) bool { return true }, base...)
}

// pickModels is harnessModels choosing each other model type's fixture
// among those keep accepts.
func pickModels(t *testing.T, keep func(name string) bool, base ...string) []string {
	if !slowTests() {
		return base
	}
	names := slices.Clone(base)
	seen := map[string]bool{}
	for _, name := range base {
		seen[fixtureModelType(t, name)] = true
	}
	for _, name := range fixture.Names(t) {
		if mt := fixtureModelType(t, name); !seen[mt] && keep(name) {
			seen[mt] = true
			names = append(names, name)
		}
	}
	return names
}

// fixtureModelType is the model_type of testdata/fixtures/name.
func fixtureModelType(t *testing.T, name string) string {
	data, err := os.ReadFile(filepath.Join(fixture.Root(), "fixtures", name, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c.ModelType
}

// slotModels is harnessModels without the bf16 checkpoints, whose experts
// run on the host: the tests of the slot kernels need quantized experts.
func slotModels(t *testing.T, base ...string) []string {
	return pickModels(t, func(name string) bool { return !strings.HasSuffix(name, "-bf16") }, base...)
}

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
		t.Skip("whole models on the shader harness")
	}
	names := harnessFixtures
	if slowTests() {
		names = fixture.Names(t)
	}
	checkFixtures(t, names, newHarnessExecutor, 2)
}

// TestEmbeddedModelOnHarness runs the embedded trained model (Qwen3-Next
// shaped) through the shader harness, resident and paged. It runs with
// MLXMOE_SLOW=1 only; the fixtures cover the same kernels.
func TestEmbeddedModelOnHarness(t *testing.T) {
	if !slowTests() {
		t.Skip("the largest model on the shader harness: set " + slowEnv + "=1")
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
		t.Skip("whole models on the shader harness")
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
