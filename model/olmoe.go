package model

// OLMoE: attention with q/k RMSNorm over the whole projection (not per
// head), softmax top-k routing without renormalisation by default.
func init() { register("olmoe", loadOLMoE) }

func loadOLMoE(w *weights) *Model {
	c, n := w.cfg, qwenNames
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+n.Attention, attentionOptions{normWhole: true, bias: c.AttentionBias}),
			loadMoE(w, n, lp+n.FFN, l, softmaxRouting(c, normTopK(c, false)), c.IntermediateSize)
	})
}
