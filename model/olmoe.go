package model

// OLMoE: attention with q/k RMSNorm over the whole projection (not per
// head), softmax top-k routing without renormalisation by default.
func init() { register("olmoe", loadOLMoE) }

func loadOLMoE(w *weights) *Model {
	c := w.cfg
	p := prefixOf(w.ix)
	m := loadCommon(w, p)
	for l := 0; l < c.NumLayers; l++ {
		lp := layerPrefix(p, l)
		m.Layers = append(m.Layers, &Layer{
			InputNorm: w.vector(lp+"input_layernorm.weight", c.HiddenSize),
			PostNorm:  w.vector(lp+"post_attention_layernorm.weight", c.HiddenSize),
			Mixer:     loadAttention(w, lp+"self_attn.", attentionOptions{normWhole: true, bias: c.AttentionBias}),
			FFN: &MoE{Layer: l,
				Router:  w.linear(lp+"mlp.gate", c.NumExperts, c.HiddenSize),
				Routing: softmaxRouting(c, normTopK(c, false)),
				Experts: loadExperts(w, l, lp+"mlp.", c.NumExperts, c.IntermediateSize, swigluNames),
			},
		})
	}
	return m
}
