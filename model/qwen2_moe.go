package model

// Qwen2-MoE: GQA attention with q/k/v biases, softmax top-k routing (not
// renormalised by default) and a shared expert scaled by
// sigmoid(shared_expert_gate x).
func init() { register("qwen2_moe", loadQwen2MoE) }

func loadQwen2MoE(w *weights) *Model {
	c := w.cfg
	bias := c.QKVBias == nil || *c.QKVBias
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+"self_attn.", attentionOptions{bias: bias}),
			qwenFFN(w, l, lp, func() FFN { return loadSharedMoE(w, lp+"mlp.", l, normTopK(c, false)) })
	})
}

// loadSharedMoE reads the Qwen2-MoE / Qwen3-Next MoE block: softmax
// routing plus a sigmoid-gated shared expert.
func loadSharedMoE(w *weights, p string, layer int, normalize bool) *MoE {
	c := w.cfg
	return &MoE{Layer: layer,
		Router:     w.linear(p+"gate", c.NumExperts, c.HiddenSize),
		Routing:    softmaxRouting(c, normalize),
		Experts:    loadExperts(w, layer, p, c.NumExperts, c.MoEIntermediateSize, swigluNames),
		Shared:     loadMLP(w, p+"shared_expert.", c.SharedIntermediate),
		SharedGate: w.linear(p+"shared_expert_gate", 1, c.HiddenSize),
	}
}
