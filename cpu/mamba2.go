package cpu

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

var (
	_ graph.Mamba2Executor = (*Executor)(nil)
	_ graph.Scaler         = (*Executor)(nil)
)

func (ex *Executor) Conv1dBias(out, x *graph.Tensor, n int, state *graph.Tensor, w, bias []float32, kernel int) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.Conv1dBiasPrefill(state.Data, ex.dense(0, x, n, 0, x.Cols), w, bias, o, n, x.Cols, kernel)
	store(out, n, 0, out.Cols, o)
}

// Mamba2Scan reads x, b and c in place at their row strides (column views
// of the conv output): kernels.Mamba2Scan takes strided rows.
func (*Executor) Mamba2Scan(y, x, dt, b, c *graph.Tensor, n int, state *graph.Tensor, p *kernels.Mamba2Params) {
	if b.RowStride() != c.RowStride() { // not views of one row: token by token
		for t := 0; t < n; t++ {
			kernels.Mamba2Step(state.Data, x.Row(t), dt.Row(t), b.Row(t), c.Row(t), y.Row(t), p)
		}
		return
	}
	kernels.Mamba2Scan(state.Data, kernels.Mamba2Rows{X: x.Data, Dt: dt.Data, B: b.Data, C: c.Data, Y: y.Data,
		XStride: x.RowStride(), DtStride: dt.RowStride(), BCStride: b.RowStride(), YStride: y.RowStride()}, n, p)
}

func (*Executor) RMSNormGate(out, x, z *graph.Tensor, n, dim int, w []float32, eps float32) {
	for t := 0; t < n; t++ {
		kernels.RMSNormGate(out.Row(t), x.Row(t), z.Row(t), w, 1, x.Cols, dim, eps)
	}
}

func (*Executor) Scale(out, x *graph.Tensor, n int, s float32) {
	for t := 0; t < n; t++ {
		kernels.ScaleVec(out.Row(t), x.Row(t), s)
	}
}
