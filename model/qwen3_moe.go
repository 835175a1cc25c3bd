package model

// Qwen3-MoE: GQA attention with per-head q/k RMSNorm, softmax top-k routing
// (norm_topk_prob), no shared expert; layers listed in mlp_only_layers (or
// off the decoder_sparse_step) are dense.
func init() { register("qwen3_moe", loadQwen3MoE) }

func loadQwen3MoE(w *weights) *Model {
	c, n := w.cfg, qwenNames
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+n.Attention, attentionOptions{qkNorm: true, bias: c.AttentionBias}),
			qwenFFN(w, l, lp, func() FFN {
				return loadMoE(w, n, lp+n.FFN, l, softmaxRouting(c, normTopK(c, true)), c.MoEIntermediateSize)
			})
	})
}

// qwenSparse says whether Qwen-style layer l is a MoE layer.
func qwenSparse(c *Config, l int) bool {
	for _, d := range c.MLPOnlyLayers {
		if d == l {
			return false
		}
	}
	step := max(c.DecoderSparseStep, 1)
	return c.NumExperts > 0 && (l+1)%step == 0
}
