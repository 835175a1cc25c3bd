package mlxmoe

import (
	"fmt"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// halfOnly is a KV executor with kernels for half precision only, as the
// Metal executor is.
type halfOnly struct{ *cpu.Executor }

func (h halfOnly) NewKV(rows, cols int, f kernels.KVFormat, group int) (*graph.KV, error) {
	if f != kernels.KVF16 {
		return nil, fmt.Errorf("no %v caches", f)
	}
	return h.Executor.NewKV(rows, cols, f, group)
}

// plainExecutor hides the CPU executor's KV capability.
type plainExecutor struct{ graph.Executor }

// TestStoresKV: Load falls back to float32 (with its note) exactly for the
// formats the executor cannot make.
func TestStoresKV(t *testing.T) {
	for _, c := range []struct {
		name string
		e    graph.Executor
		f    kernels.KVFormat
		want bool
	}{
		{"cpu q4", cpu.New(), kernels.KVQ4, true},
		{"half-only f16", halfOnly{cpu.New()}, kernels.KVF16, true},
		{"half-only q8", halfOnly{cpu.New()}, kernels.KVQ8, false},
		{"no KV capability", plainExecutor{cpu.New()}, kernels.KVF16, false},
	} {
		if got := storesKV(c.e, c.f); got != c.want {
			t.Errorf("%s: storesKV = %v, want %v", c.name, got, c.want)
		}
	}
}
