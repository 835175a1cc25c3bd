package cpu

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

var _ graph.LayerNormExecutor = (*Executor)(nil)

// LayerNorm runs kernels.LayerNorm over the rows (one row at a time for a
// strided view).
func (*Executor) LayerNorm(out, x *graph.Tensor, n, dim int, w, b []float32, eps float32) {
	if contiguous(n, out, x) {
		kernels.LayerNorm(out.Data, x.Data, w, b, n*x.Cols/dim, dim, eps)
		return
	}
	for t := 0; t < n; t++ {
		kernels.LayerNorm(out.Row(t), x.Row(t), w, b, x.Cols/dim, dim, eps)
	}
}
