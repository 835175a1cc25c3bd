package mlxmoe

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
)

// TestInt8ExpertsOption: Options.Int8Experts reaches the CPU executor
// unless FloatActivations asks for the exact path, and such a model
// generates.
func TestInt8ExpertsOption(t *testing.T) {
	for _, c := range []struct{ int8, float, want bool }{{false, false, false}, {true, false, true}, {true, true, false}} {
		m := loadFixture(t, "qwen3_moe-4bit", Options{Device: "cpu", Int8Experts: c.int8, FloatActivations: c.float})
		e, ok := m.exec.(*cpu.Executor)
		if !ok {
			t.Fatalf("executor %T, want the CPU's", m.exec)
		}
		if e.Int8Experts != c.want {
			t.Errorf("Int8Experts %v, FloatActivations %v: the executor's Int8Experts is %v", c.int8, c.float, e.Int8Experts)
		}
		res, err := m.Stream(t.Context(), randomIDs(5, 6), greedy(4), nil)
		if err != nil || len(res.IDs) != 4 {
			t.Fatalf("Int8Experts %v: generated %v, %v", c.int8, res.IDs, err)
		}
	}
}
