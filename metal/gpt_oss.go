package metal

import "github.com/mlx-moe/mlx-moe/graph"

// gpt-oss's ops have no shaders yet: they run on the host (counted by
// HostOps, so the harness's fixture tests name them), after everything
// encoded before them.

var (
	_ graph.SinkAttention = (*Executor)(nil)
	_ graph.ClampedMoE    = (*Executor)(nil)
)

func (e *Executor) AttentionSinks(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int) {
	e.onHost("AttentionSinks", func() {
		e.host.AttentionSinks(out, q, kCache, vCache, n, pos0, heads, kvHeads, dk, dv, scale, sinks, window)
	})
}

func (e *Executor) MoEClamped(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet, b *graph.BiasedExperts) (err error) {
	e.onHost("MoEClamped", func() { err = e.host.MoEClamped(out, x, n, r, experts, b) })
	if err == nil {
		err = e.err
	}
	return err
}
