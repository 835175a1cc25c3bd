package model_test

import "github.com/mlx-moe/mlx-moe/graph"

// allocsByOp measures gpt-oss's ops too (see opcount_test.go).
func init() { kernelOps = append(kernelOps, "AttentionSinks", "MoEClamped") }

func (a *allocsByOp) AttentionSinks(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	a.measure("AttentionSinks", func() {
		a.Executor.(graph.SinkAttention).AttentionSinks(out, q, kCache, vCache, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
	})
}

func (a *allocsByOp) MoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) (err error) {
	a.measure("MoEClamped", func() { err = a.Executor.(graph.ClampedMoE).MoEClamped(out, x, n, r, experts, b) })
	return err
}
