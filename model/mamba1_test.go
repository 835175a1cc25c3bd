package model_test

import "github.com/mlx-moe/mlx-moe/graph"

// allocsByOp (opcount_test.go) forwards the Mamba-1 ops too, so the
// allocation tests run the jamba fixtures; their allocations count in the
// step's total.

func (a *allocsByOp) Mamba1Conv(out, x *graph.Tensor, n int, state *graph.Tensor, w, bias []float32, kernel int) {
	a.Executor.(graph.Mamba1Executor).Mamba1Conv(out, x, n, state, w, bias, kernel)
}

func (a *allocsByOp) Mamba1Scan(out, x, dt, b, c, z *graph.Tensor, n int, state *graph.Tensor, aa, d []float32) {
	a.Executor.(graph.Mamba1Executor).Mamba1Scan(out, x, dt, b, c, z, n, state, aa, d)
}
