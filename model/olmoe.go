package model

// OLMoE: attention with q/k RMSNorm over the whole projection (not per
// head), softmax top-k routing without renormalisation by default.
func init() { register("olmoe", loadOLMoE) }

func loadOLMoE(w *weights) *Model {
	c := w.cfg
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+"self_attn.", attentionOptions{normWhole: true, bias: c.AttentionBias}),
			&MoE{Layer: l,
				Router:  w.linear(lp+"mlp.gate", c.NumExperts, c.HiddenSize),
				Routing: softmaxRouting(c, normTopK(c, false)),
				Experts: loadExperts(w, l, lp+"mlp.", c.NumExperts, c.IntermediateSize, swigluNames),
			}
	})
}
