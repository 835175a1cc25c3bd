package model

// Qwen2-MoE: GQA attention with q/k/v biases, softmax top-k routing (not
// renormalised by default) and a shared expert scaled by
// sigmoid(shared_expert_gate x).
func init() { register("qwen2_moe", loadQwen2MoE) }

func loadQwen2MoE(w *weights) *Model {
	c := w.cfg
	p := prefixOf(w.ix)
	m := loadCommon(w, p)
	bias := c.QKVBias == nil || *c.QKVBias
	for l := 0; l < c.NumLayers; l++ {
		lp := layerPrefix(p, l)
		layer := &Layer{
			InputNorm: w.vector(lp+"input_layernorm.weight", c.HiddenSize),
			PostNorm:  w.vector(lp+"post_attention_layernorm.weight", c.HiddenSize),
			Mixer:     loadAttention(w, lp+"self_attn.", attentionOptions{bias: bias}),
		}
		if qwenSparse(c, l) {
			layer.FFN = loadSharedMoE(w, lp+"mlp.", l, normTopK(c, false))
		} else {
			layer.FFN = loadMLP(w, lp+"mlp.", c.IntermediateSize)
		}
		m.Layers = append(m.Layers, layer)
	}
	return m
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
