package mlxmoe

import (
	"context"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/metal"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestModelMemoryUseCPU: on the CPU executor the model's figure counts the
// dense weights once (the host holds them: the checkpoint less the paged
// experts), the pager's slots (capacity times the slot size, per MoE
// layer), and the executor's live tensors; a second generation leaves it
// as the first did (its cache is freed).
func TestModelMemoryUseCPU(t *testing.T) {
	const capacity = 4
	m := loadWith(t, fixture.Dir(t, "fixtures/qwen3_moe-4bit"), ExpertOptions{Policy: "exact", Capacity: capacity})
	if m.exec.Name() != "cpu" {
		t.Skipf("the %s executor: this test is about the CPU's figure", m.exec.Name())
	}
	generate := func() {
		if _, err := m.Generate(context.Background(), "def f(x):", GenerateOptions{MaxTokens: 4}); err != nil {
			t.Fatal(err)
		}
	}
	generate()
	first := m.MemoryUse()
	generate()
	u := m.MemoryUse()
	if u.Weights != m.Model.ResidentBytes() {
		t.Errorf("weights count %d bytes, the model holds %d", u.Weights, m.Model.ResidentBytes())
	}
	// The same figure from the checkpoint's tensor names: everything but
	// the routed experts (which the pager holds in its slots).
	var dense int64
	for _, name := range m.Model.Index.Names() {
		if !strings.Contains(name, "switch_mlp.") {
			ti, _ := m.Model.Index.Tensor(name)
			dense += ti.Length
		}
	}
	if u.Weights != dense {
		t.Errorf("weights count %d bytes, the checkpoint's non-expert tensors are %d", u.Weights, dense)
	}
	var slots int64
	for _, l := range m.Model.Layers {
		moe, ok := l.FFN.(*model.MoE)
		if !ok {
			continue
		}
		set, ok := moe.Experts.(metal.SlotExperts)
		if !ok {
			t.Fatal("a paged MoE layer's experts have no slot pool")
		}
		_, _, layout, _ := set.SlotPool()
		slots += capacity * layout.SlotStride
	}
	if slots == 0 || u.ExpertSlots != slots {
		t.Errorf("expert slots count %d bytes, want %d (%d slots of each MoE layer)", u.ExpertSlots, slots, capacity)
	}
	if u.Tensors == 0 {
		t.Error("no tensors counted after a generation (the runner's activations)")
	}
	if u != first {
		t.Errorf("a second generation changed the figure from %+v to %+v: something it made was not freed", first, u)
	}
	t.Logf("qwen3_moe-4bit, capacity %d: %+v", capacity, u)
}
