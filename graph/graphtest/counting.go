// Package graphtest holds test helpers for code that runs on a
// graph.Executor: Counting wraps an executor and counts the ops issued to
// it, so a test can check how many tensors a decode step allocates or how
// many copies a forward pass makes.
package graphtest

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Counting forwards every op to Executor and counts it by name in Ops.
type Counting struct {
	graph.Executor
	Ops map[string]int
}

// NewCounting wraps e.
func NewCounting(e graph.Executor) *Counting {
	return &Counting{Executor: e, Ops: map[string]int{}}
}

// Reset clears the counts.
func (c *Counting) Reset() { clear(c.Ops) }

// Total is the number of ops counted (NewTensor included).
func (c *Counting) Total() int {
	n := 0
	for _, v := range c.Ops {
		n += v
	}
	return n
}

func (c *Counting) NewTensor(rows, cols int) *graph.Tensor {
	c.Ops["NewTensor"]++
	return c.Executor.NewTensor(rows, cols)
}

func (c *Counting) Embed(out *graph.Tensor, table *kernels.Matrix, ids []int32) {
	c.Ops["Embed"]++
	c.Executor.Embed(out, table, ids)
}

func (c *Counting) MatMul(out, x *graph.Tensor, n int, w *kernels.Matrix, bias []float32) {
	c.Ops["MatMul"]++
	c.Executor.MatMul(out, x, n, w, bias)
}

func (c *Counting) RMSNorm(out, x *graph.Tensor, n, dim int, w []float32, eps float32) {
	c.Ops["RMSNorm"]++
	c.Executor.RMSNorm(out, x, n, dim, w, eps)
}

func (c *Counting) Rope(x *graph.Tensor, pos []int32, heads, headDim int, p *kernels.RopeParams) {
	c.Ops["Rope"]++
	c.Executor.Rope(x, pos, heads, headDim, p)
}

func (c *Counting) Zero(t *graph.Tensor) {
	c.Ops["Zero"]++
	c.Executor.Zero(t)
}

func (c *Counting) CopyCols(dst *graph.Tensor, dstRow, dstCol int, src *graph.Tensor, srcRow, srcCol, n, cols int) {
	c.Ops["CopyCols"]++
	c.Executor.CopyCols(dst, dstRow, dstCol, src, srcRow, srcCol, n, cols)
}

func (c *Counting) Attention(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	c.Ops["Attention"]++
	c.Executor.Attention(out, q, kCache, vCache, n, pos0, heads, kvHeads, dk, dv, scale)
}

func (c *Counting) Add(out, a, b *graph.Tensor, n int) {
	c.Ops["Add"]++
	c.Executor.Add(out, a, b, n)
}

func (c *Counting) SwiGLU(out, gate, up *graph.Tensor, n int) {
	c.Ops["SwiGLU"]++
	c.Executor.SwiGLU(out, gate, up, n)
}

func (c *Counting) MulSigmoid(out, x, g *graph.Tensor, n int) {
	c.Ops["MulSigmoid"]++
	c.Executor.MulSigmoid(out, x, g, n)
}

func (c *Counting) Route(r *graph.Routes, logits *graph.Tensor, n int, p *kernels.Routing) {
	c.Ops["Route"]++
	c.Executor.Route(r, logits, n, p)
}

func (c *Counting) MoE(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet) error {
	c.Ops["MoE"]++
	return c.Executor.MoE(out, x, n, r, experts)
}

func (c *Counting) Conv1d(out, x *graph.Tensor, n int, state *graph.Tensor, w []float32, kernel int) {
	c.Ops["Conv1d"]++
	c.Executor.Conv1d(out, x, n, state, w, kernel)
}

func (c *Counting) Activate(out, x *graph.Tensor, n int, f graph.Activation, shift, scale []float32) {
	c.Ops["Activate"]++
	c.Executor.Activate(out, x, n, f, shift, scale)
}

func (c *Counting) GatedDelta(out, q, k, v, g, beta *graph.Tensor, n int, state *graph.Tensor, hk, hv, dk, dv int) {
	c.Ops["GatedDelta"]++
	c.Executor.GatedDelta(out, q, k, v, g, beta, n, state, hk, hv, dk, dv)
}

func (c *Counting) GatedRMSNorm(out, x, z *graph.Tensor, n, dim int, w []float32, eps float32) {
	c.Ops["GatedRMSNorm"]++
	c.Executor.GatedRMSNorm(out, x, z, n, dim, w, eps)
}

func (c *Counting) Free(t *graph.Tensor) {
	c.Ops["Free"]++
	c.Executor.Free(t)
}

func (c *Counting) MatMulHeads(out *graph.Tensor, outStep int, x *graph.Tensor, xStep int, n int, ws []*kernels.Matrix) {
	c.Ops["MatMulHeads"]++
	c.Executor.MatMulHeads(out, outStep, x, xStep, n, ws)
}
