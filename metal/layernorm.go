package metal

import "github.com/mlx-moe/mlx-moe/graph"

var _ graph.LayerNormExecutor = (*Executor)(nil)

// layerNormParams is layernorm.metal's LayerNormParams.
type layerNormParams struct {
	Dim                uint32
	Eps                float32
	HasWeight, HasBias uint32
}

// LayerNorm runs the layernorm kernel over every dim-sized chunk of the
// first n rows in one dispatch (a strided view row by row).
func (e *Executor) LayerNorm(out, x *graph.Tensor, n, dim int, w, b []float32, eps float32) {
	if !contiguous(n, out, x) {
		for t := 0; t < n; t++ {
			e.LayerNorm(rowView(out, t), rowView(x, t), 1, dim, w, b, eps)
		}
		return
	}
	rows := n * x.Cols / dim
	if rows == 0 {
		return
	}
	p := layerNormParams{Dim: uint32(dim), Eps: eps}
	wb, bb := e.tensor(1, x, 0), e.tensor(2, x, 0) // not read without a weight or bias
	if w != nil {
		p.HasWeight, wb = 1, e.floats(1, w)
	}
	if b != nil {
		p.HasBias, bb = 1, e.floats(2, b)
	}
	e.run("layernorm", [3]int{rows, 1, 1}, [3]int{normThreads(dim), 1, 1},
		e.tensor(0, x, 0), wb, bb, e.tensor(3, out, 0), e.upload(4, p))
}
