package graphtest

import "github.com/mlx-moe/mlx-moe/graph"

// Mamba-1 ops (graph.Mamba1Executor): Null does nothing, Counting counts
// and forwards them to an executor that has them.

func (Null) Mamba1Conv(*graph.Tensor, *graph.Tensor, int, *graph.Tensor, []float32, []float32, int) {}
func (Null) Mamba1Scan(*graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, *graph.Tensor, int, *graph.Tensor, []float32, []float32, []float32) {
}

func (c *Counting) Mamba1Conv(out, x *graph.Tensor, n int, state *graph.Tensor, w, bias []float32, kernel int) {
	c.Ops["Mamba1Conv"]++
	c.mamba1().Mamba1Conv(out, x, n, state, w, bias, kernel)
}

func (c *Counting) Mamba1Scan(out, x, dt, b, cm, z *graph.Tensor, n int, state *graph.Tensor, dtBias, a, d []float32) {
	c.Ops["Mamba1Scan"]++
	c.mamba1().Mamba1Scan(out, x, dt, b, cm, z, n, state, dtBias, a, d)
}

// mamba1 is the wrapped executor's Mamba-1 ops; wrapping one without them
// is a mistake in the test.
func (c *Counting) mamba1() graph.Mamba1Executor {
	m, ok := c.Executor.(graph.Mamba1Executor)
	if !ok {
		panic("graphtest: the " + c.Executor.Name() + " executor has no Mamba-1 ops")
	}
	return m
}
