package graphtest

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// The Mamba-2 and Scaler capabilities: Null computes nothing; Counting
// counts and forwards to its executor, which must have them.

var (
	_ graph.Mamba2Executor = Null{}
	_ graph.Scaler         = Null{}
	_ graph.Mamba2Executor = (*Counting)(nil)
	_ graph.Scaler         = (*Counting)(nil)
)

func (Null) Conv1dBias(*graph.Tensor, *graph.Tensor, int, *graph.Tensor, []float32, []float32, int) {}
func (Null) Mamba2Scan(*graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, int, *graph.Tensor, *kernels.Mamba2Params) {
}
func (Null) RMSNormGate(*graph.Tensor, *graph.Tensor, *graph.Tensor, int, int, []float32, float32) {}
func (Null) Scale(*graph.Tensor, *graph.Tensor, int, float32)                                      {}

func (c *Counting) Conv1dBias(out, x *graph.Tensor, n int, state *graph.Tensor, w, bias []float32, kernel int) {
	c.Ops["Conv1dBias"]++
	c.Executor.(graph.Mamba2Executor).Conv1dBias(out, x, n, state, w, bias, kernel)
}

func (c *Counting) Mamba2Scan(y, x, dt, b, cm *graph.Tensor, n int, state *graph.Tensor, p *kernels.Mamba2Params) {
	c.Ops["Mamba2Scan"]++
	c.Executor.(graph.Mamba2Executor).Mamba2Scan(y, x, dt, b, cm, n, state, p)
}

func (c *Counting) RMSNormGate(out, x, z *graph.Tensor, n, dim int, w []float32, eps float32) {
	c.Ops["RMSNormGate"]++
	c.Executor.(graph.Mamba2Executor).RMSNormGate(out, x, z, n, dim, w, eps)
}

func (c *Counting) Scale(out, x *graph.Tensor, n int, s float32) {
	c.Ops["Scale"]++
	c.Executor.(graph.Scaler).Scale(out, x, n, s)
}
