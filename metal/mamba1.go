package metal

import (
	"github.com/mlx-moe/mlx-moe/graph"
)

var _ graph.Mamba1Executor = (*Executor)(nil)

// Mamba1Conv runs mamba1_conv (kernels/msl/mamba1.metal); without bias it
// binds the zeros scratch. Strided views and kernels wider than the
// shader's window run on the host.
func (e *Executor) Mamba1Conv(out, x *graph.Tensor, n int, state *graph.Tensor, w, bias []float32, kernel int) {
	if kernel > convMaxKernel || kernel < 1 || !contiguous(n, out, x) || !state.Contiguous(state.Rows) {
		e.onHost("Mamba1Conv", func() { e.host.Mamba1Conv(out, x, n, state, w, bias, kernel) })
		return
	}
	ch := x.Cols
	b := binding{index: 3, n: 4 * ch}
	if bias != nil {
		b = e.floats(3, bias[:ch])
	} else if b.buf = e.scratchBuf("zeros", 4*ch); b.buf == nil {
		return
	}
	e.run("mamba1_conv", [3]int{ceilDiv(ch, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, state, 0), e.tensor(1, x, 0), e.floats(2, w), b, e.tensor(4, out, 0),
		e.upload(5, []uint32{uint32(ch), uint32(kernel), uint32(n)}))
}

// Mamba1Scan runs mamba1_scan: b and c may be column views of one
// projection (same row stride); x, dt, z and out must be contiguous, else
// the scan runs on the host.
func (e *Executor) Mamba1Scan(out, x, dt, b, c, z *graph.Tensor, n int, state *graph.Tensor, dtBias, a, d []float32) {
	ld := b.RowStride()
	if !contiguous(n, out, x, dt, z) || c.RowStride() != ld || !state.Contiguous(state.Rows) {
		e.onHost("Mamba1Scan", func() { e.host.Mamba1Scan(out, x, dt, b, c, z, n, state, dtBias, a, d) })
		return
	}
	ch := x.Cols
	e.run("mamba1_scan", [3]int{ceilDiv(ch, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, state, 0), e.tensor(1, x, 0), e.tensor(2, dt, 0), e.tensor(3, b, 0), e.tensor(4, c, 0),
		e.tensor(5, z, 0), e.floats(6, a), e.floats(7, d), e.tensor(8, out, 0),
		e.upload(9, []uint32{uint32(ch), uint32(b.Cols), uint32(n), uint32(ld)}), e.floats(10, dtBias[:ch]))
}
