package metal

import (
	"math"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// The Mamba-2 ops and Scale on mamba2.metal's kernels (launch shapes in
// its comments). Their parameter blocks go up as []uint32, float fields as
// their bits, so they need no entry in paramBytes.

var (
	_ graph.Mamba2Executor = (*Executor)(nil)
	_ graph.Scaler         = (*Executor)(nil)
)

// mamba2MaxState is mamba2_scan's largest state_dim (kMambaMaxState).
const mamba2MaxState = 256

func (e *Executor) Conv1dBias(out, x *graph.Tensor, n int, state *graph.Tensor, w, bias []float32, kernel int) {
	if kernel > convMaxKernel || kernel < 1 || !contiguous(n, out, x) || !state.Contiguous(state.Rows) {
		e.onHost("Conv1dBias", func() { e.host.Conv1dBias(out, x, n, state, w, bias, kernel) })
		return
	}
	e.run("conv1d_bias", [3]int{ceilDiv(x.Cols, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, state, 0), e.tensor(1, x, 0), e.floats(2, w), e.floats(3, bias), e.tensor(4, out, 0),
		e.upload(5, []uint32{uint32(x.Cols), uint32(kernel), uint32(n)}))
}

// Mamba2Scan reads x, b and c at their own row strides (column views of
// the conv output), so it needs no contiguous copy.
func (e *Executor) Mamba2Scan(y, x, dt, b, c *graph.Tensor, n int, state *graph.Tensor, p *kernels.Mamba2Params) {
	if p.StateDim > mamba2MaxState || !state.Contiguous(state.Rows) || p.Groups <= 0 || p.Heads%p.Groups != 0 ||
		b.RowStride() != c.RowStride() {
		e.onHost("Mamba2Scan", func() { e.host.Mamba2Scan(y, x, dt, b, c, n, state, p) })
		return
	}
	prm := []uint32{uint32(p.Heads), uint32(p.HeadDim), uint32(p.Groups), uint32(p.StateDim), uint32(n),
		uint32(x.RowStride()), uint32(dt.RowStride()), uint32(b.RowStride()), uint32(y.RowStride()),
		math.Float32bits(p.DtMin), math.Float32bits(p.DtMax)}
	e.run("mamba2_scan", [3]int{p.Heads, 1, 1}, [3]int{min(256, ceilDiv(p.HeadDim, 32)*32), 1, 1},
		e.tensor(0, state, 0), e.tensor(1, x, 0), e.tensor(2, dt, 0), e.tensor(3, b, 0), e.tensor(4, c, 0),
		e.tensor(5, y, 0), e.floats(6, p.A), e.floats(7, p.D), e.floats(8, p.DtBias), e.upload(9, prm))
}

func (e *Executor) RMSNormGate(out, x, z *graph.Tensor, n, dim int, w []float32, eps float32) {
	if !contiguous(n, out, x, z) {
		for t := 0; t < n; t++ {
			e.RMSNormGate(rowView(out, t), rowView(x, t), rowView(z, t), 1, dim, w, eps)
		}
		return
	}
	e.run("rmsnorm_gate", [3]int{n * x.Cols / dim, 1, 1}, [3]int{normThreads(dim), 1, 1},
		e.tensor(0, x, 0), e.tensor(1, z, 0), e.floats(2, w), e.tensor(3, out, 0),
		e.upload(4, []uint32{uint32(dim), math.Float32bits(eps), uint32(x.Cols)}))
}

func (e *Executor) Scale(out, x *graph.Tensor, n int, s float32) {
	if !contiguous(n, out, x) {
		for t := 0; t < n; t++ {
			e.Scale(rowView(out, t), rowView(x, t), 1, s)
		}
		return
	}
	count := n * x.Cols
	e.run("scale_rows", [3]int{ceilDiv(count, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, x, 0), e.tensor(1, out, 0), e.upload(2, []uint32{uint32(count), math.Float32bits(s)}))
}
