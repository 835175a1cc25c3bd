package model

// Mixtral: GQA attention without q/k norm, softmax top-k routing with the
// chosen weights renormalised; the MoE block is named block_sparse_moe and
// Hugging Face checkpoints call the expert matrices w1 (gate), w3 (up) and
// w2 (down).
func init() { register("mixtral", loadMixtral) }

func loadMixtral(w *weights) *Model {
	c := w.cfg
	p := prefixOf(w.ix)
	m := loadCommon(w, p)
	for l := 0; l < c.NumLayers; l++ {
		lp := layerPrefix(p, l)
		m.Layers = append(m.Layers, &Layer{
			InputNorm: w.vector(lp+"input_layernorm.weight", c.HiddenSize),
			PostNorm:  w.vector(lp+"post_attention_layernorm.weight", c.HiddenSize),
			Mixer:     loadAttention(w, lp+"self_attn.", attentionOptions{}),
			FFN: &MoE{Layer: l,
				Router:  w.linear(lp+"block_sparse_moe.gate", c.NumExperts, c.HiddenSize),
				Routing: softmaxRouting(c, true),
				Experts: loadExperts(w, l, lp+"block_sparse_moe.", c.NumExperts, c.IntermediateSize, expertNames{"w1", "w3", "w2"}),
			},
		})
	}
	return m
}
