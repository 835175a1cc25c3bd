package metal

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestLongEncodeCommitsEarly runs a prompt on the harness device and checks
// that no command buffer gets more than commitEvery dispatches (the
// executor commits early while it encodes, so the GPU starts on a long
// prompt before the host has encoded all of it) and that the logits still
// match the CPU executor (TestFixturesOnHarness runs the same encoding).
func TestLongEncodeCommitsEarly(t *testing.T) {
	if testing.Short() {
		t.Skip("a prefill on the shader harness")
	}
	m, err := model.Load(fixture.Dir(t, "fixtures/qwen3_moe-3bit-g32"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := newHarnessDevice(t)
	e := newExecutor(d)
	ids := make([]int32, 24)
	for i := range ids {
		ids[i] = int32(i*7+1) % int32(m.Config.VocabSize)
	}
	if _, err := model.NewRunner(m, e).Forward(m.NewCache(e, len(ids)), ids, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s; longest command buffer %d dispatches", d.summary(), d.longestBuffer)
	if d.early == 0 {
		t.Errorf("a %d-dispatch prefill committed nothing early", sumOps(d.dispatches))
	}
	if d.longestBuffer > commitEvery {
		t.Errorf("a command buffer got %d dispatches, more than commitEvery (%d)", d.longestBuffer, commitEvery)
	}
}
