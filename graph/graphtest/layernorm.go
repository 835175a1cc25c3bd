package graphtest

import "github.com/mlx-moe/mlx-moe/graph"

// LayerNorm counts and forwards graph.LayerNormExecutor's op; the wrapped
// executor must implement it.
func (c *Counting) LayerNorm(out, x *graph.Tensor, n, dim int, w, b []float32, eps float32) {
	c.Ops["LayerNorm"]++
	ln, ok := c.Executor.(graph.LayerNormExecutor)
	if !ok {
		panic("graphtest: LayerNorm on " + c.Executor.Name() + ", which does not implement it")
	}
	ln.LayerNorm(out, x, n, dim, w, b, eps)
}

func (Null) LayerNorm(*graph.Tensor, *graph.Tensor, int, int, []float32, []float32, float32) {}
