package graphtest

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Null is an executor whose ops compute nothing: tensors are host memory
// and every op returns at once, except Route, which picks experts
// 0..TopK-1 with equal weights, and MoE, which resolves them (so an
// expert set's own work, a pager's included, is measured). It measures what
// model code itself does per step (allocations, ops issued) apart from any
// device's kernels.
type Null struct{}

var _ graph.Executor = Null{}

func (Null) Name() string { return "null" }

func (Null) NewTensor(rows, cols int) *graph.Tensor {
	return &graph.Tensor{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

func (Null) Free(t *graph.Tensor)                                                       { t.Data = nil }
func (Null) Read(t *graph.Tensor) []float32                                             { return t.Data }
func (Null) Sync() error                                                                { return nil }
func (Null) Embed(*graph.Tensor, *kernels.Matrix, []int32)                              {}
func (Null) MatMul(*graph.Tensor, *graph.Tensor, int, *kernels.Matrix, []float32)       {}
func (Null) MatMulHeads(*graph.Tensor, int, *graph.Tensor, int, int, []*kernels.Matrix) {}
func (Null) RMSNorm(*graph.Tensor, *graph.Tensor, int, int, []float32, float32)         {}
func (Null) Rope(*graph.Tensor, []int32, int, int, *kernels.RopeParams)                 {}
func (Null) Zero(*graph.Tensor)                                                         {}
func (Null) CopyCols(*graph.Tensor, int, int, *graph.Tensor, int, int, int, int)        {}
func (Null) Attention(*graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, int, int, int, int, int, int, float32) {
}
func (Null) Add(*graph.Tensor, *graph.Tensor, *graph.Tensor, int)        {}
func (Null) SwiGLU(*graph.Tensor, *graph.Tensor, *graph.Tensor, int)     {}
func (Null) MulSigmoid(*graph.Tensor, *graph.Tensor, *graph.Tensor, int) {}

func (Null) Route(r *graph.Routes, _ *graph.Tensor, n int, p *kernels.Routing) {
	r.Tokens = n
	for t := 0; t < n; t++ {
		for k := 0; k < r.TopK; k++ {
			r.IDs[t*r.TopK+k] = int32(k)
			r.Weights[t*r.TopK+k] = 1 / float32(r.TopK)
		}
	}
}

// MoE resolves each token's routed experts (distinct within a token) and
// asks for their matrices, as an executor would, computing nothing.
func (Null) MoE(_, _ *graph.Tensor, n int, r *graph.Routes, set graph.ExpertSet) error {
	for t := 0; t < n; t++ {
		ids := r.IDs[t*r.TopK : (t+1)*r.TopK]
		present, err := set.Resolve(ids)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if present[i] {
				set.Expert(id)
			}
		}
	}
	return nil
}

func (Null) Conv1d(*graph.Tensor, *graph.Tensor, int, *graph.Tensor, []float32, int)            {}
func (Null) Activate(*graph.Tensor, *graph.Tensor, int, graph.Activation, []float32, []float32) {}
func (Null) GatedDelta(*graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, int, *graph.Tensor, int, int, int, int) {
}
func (Null) GatedRMSNorm(*graph.Tensor, *graph.Tensor, *graph.Tensor, int, int, []float32, float32) {}
