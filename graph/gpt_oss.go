package graph

import "github.com/mlx-moe/mlx-moe/kernels"

// Optional executor capabilities gpt-oss needs. Model code asks for them
// by type assertion and fails with a named error on an executor without
// them, rather than computing something else.

// SinkAttention is Attention with gpt-oss's two changes: head h's softmax
// adds exp(sinks[h]) to its denominator (a learned logit with no value),
// and with window > 0 the token at position p sees only positions
// p-window+1..p (sliding-window layers).
type SinkAttention interface {
	AttentionSinks(out, q, kCache, vCache *Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int)
}

// SinkAttentionKV is SinkAttention against KV caches in a compact format
// (KVExecutor's), columns as in KVExecutor.AttentionKV. An executor that
// stores compact caches needs it to run gpt-oss with them.
type SinkAttentionKV interface {
	AttentionSinksKV(out, q *Tensor, k *KV, kc0 int, v *KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32, sinks []float32, window int)
}

// BiasedExperts are the parts of gpt-oss's routed experts beyond their
// matrices: a bias on each projection (per expert id) and the clamped
// SwiGLU, (up'+1)·g·σ(Alpha·g) with g = min(gate, Limit) and up' = up
// clamped to [-Limit, Limit].
type BiasedExperts struct {
	GateBias, UpBias, DownBias [][]float32
	// Interleaved: each expert's gate matrix is gpt-oss's gate_up_proj,
	// gate and up rows alternating (row 2i is gate i, 2i+1 up i), its up
	// matrix is nil and GateBias holds both biases alike.
	Interleaved bool
	// Transposed: each expert's matrices are stored [in, out], as
	// transformers keeps gpt-oss's bf16 experts (gate_up_proj [hidden,
	// 2I], down_proj [I, hidden]): y = x·W (kernels.MatMulTransposed).
	Transposed   bool
	Alpha, Limit float32
}

// ExpertDims are an expert's widths whatever its storage: gate's input
// (the hidden size) and output, down's input (the intermediate size) and
// output.
func (b *BiasedExperts) ExpertDims(gate, down *kernels.Matrix) (hidden, gateOut, inter, out int) {
	if b.Transposed {
		return gate.Rows, gate.Cols, down.Rows, down.Cols
	}
	return gate.Cols, gate.Rows, down.Cols, down.Rows
}

// ClampedMoE is MoE (same routing, resolving and summing) over experts
// with biases and the clamped SwiGLU of BiasedExperts.
type ClampedMoE interface {
	MoEClamped(out, x *Tensor, n int, r *Routes, experts ExpertSet, b *BiasedExperts) error
}
