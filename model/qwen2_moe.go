package model

// Qwen2-MoE: GQA attention with q/k/v biases, softmax top-k routing (not
// renormalised by default) and a shared expert scaled by
// sigmoid(shared_expert_gate x).
func init() { register("qwen2_moe", loadQwen2MoE) }

func loadQwen2MoE(w *weights) *Model {
	c := w.cfg
	bias := c.QKVBias == nil || *c.QKVBias
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+qwenNames.Attention, attentionOptions{bias: bias}),
			qwenFFN(w, l, lp, func() FFN { return loadSharedMoE(w, lp+qwenNames.FFN, l, normTopK(c, false)) })
	})
}

// loadSharedMoE reads the Qwen2-MoE / Qwen3-Next MoE block: softmax
// routing plus a sigmoid-gated shared expert.
func loadSharedMoE(w *weights, p string, layer int, normalize bool) *MoE {
	c, n := w.cfg, qwenNames
	moe := loadMoE(w, n, p, layer, softmaxRouting(c, normalize), c.MoEIntermediateSize)
	moe.Shared = loadMLP(w, p+n.Shared, c.SharedIntermediate)
	moe.SharedGate = w.linear(p+n.SharedGate, 1, c.HiddenSize)
	return moe
}
