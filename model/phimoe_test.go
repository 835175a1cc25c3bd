package model_test

import (
	"github.com/mlx-moe/mlx-moe/graph"
)

// LayerNorm lets the allocation test's executor run LayerNorm models
// (not one of the kernelOps it measures: kernels.LayerNorm keeps no
// scratch).
func (a *allocsByOp) LayerNorm(out, x *graph.Tensor, n, dim int, w, b []float32, eps float32) {
	a.Executor.(graph.LayerNormExecutor).LayerNorm(out, x, n, dim, w, b, eps)
}
