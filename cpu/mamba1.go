package cpu

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

var _ graph.Mamba1Executor = (*Executor)(nil)

// Mamba1Conv runs kernels.Mamba1Conv over the first n rows of x.
func (ex *Executor) Mamba1Conv(out, x *graph.Tensor, n int, state *graph.Tensor, w, bias []float32, kernel int) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.Mamba1Conv(state.Data, ex.dense(0, x, n, 0, x.Cols), w, bias, o, n, x.Cols, kernel)
	store(out, n, 0, out.Cols, o)
}

// Mamba1Scan runs kernels.Mamba1Scan over the first n rows; b and c may be
// column views of one projection (gathered into view scratch for n > 1).
func (ex *Executor) Mamba1Scan(out, x, dt, b, c, z *graph.Tensor, n int, state *graph.Tensor, dtBias, a, d []float32) {
	ch, ds := x.Cols, b.Cols
	o := ex.target(5, out, n, 0, ch)
	kernels.Mamba1Scan(state.Data, ex.dense(0, x, n, 0, ch), ex.dense(1, dt, n, 0, ch), dtBias, ex.dense(2, b, n, 0, ds),
		ex.dense(3, c, n, 0, ds), ex.dense(4, z, n, 0, ch), a, d, o, n, ch, ds)
	store(out, n, 0, ch, o)
}
