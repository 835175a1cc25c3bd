package graphtest

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
)

// gpt-oss's optional ops (graph.SinkAttention, graph.ClampedMoE): Null
// runs them as nothing, Counting counts and forwards them.

var (
	_ graph.SinkAttention = Null{}
	_ graph.ClampedMoE    = Null{}
	_ graph.SinkAttention = (*Counting)(nil)
	_ graph.ClampedMoE    = (*Counting)(nil)
)

func (Null) AttentionSinks(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
}

// MoEClamped resolves the routed experts, as Null's MoE does.
func (nl Null) MoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) error {
	return nl.MoE(out, x, n, r, experts)
}

func (c *Counting) AttentionSinks(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	c.Ops["AttentionSinks"]++
	sa, ok := c.Executor.(graph.SinkAttention)
	if !ok {
		panic(fmt.Sprintf("graphtest: executor %s has no AttentionSinks", c.Executor.Name()))
	}
	sa.AttentionSinks(out, q, kCache, vCache, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
}

func (c *Counting) MoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) error {
	c.Ops["MoEClamped"]++
	ce, ok := c.Executor.(graph.ClampedMoE)
	if !ok {
		return fmt.Errorf("executor %s cannot run biased, clamped experts", c.Executor.Name())
	}
	return ce.MoEClamped(out, x, n, r, experts, b)
}
