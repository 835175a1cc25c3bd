package model

// Mixtral: GQA attention without q/k norm, softmax top-k routing with the
// chosen weights renormalised; the MoE block is named block_sparse_moe and
// Hugging Face checkpoints call the expert matrices w1 (gate), w3 (up) and
// w2 (down).
func init() { register("mixtral", loadMixtral) }

func loadMixtral(w *weights) *Model {
	c := w.cfg
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+"self_attn.", attentionOptions{}),
			&MoE{Layer: l,
				Router:  w.linear(lp+"block_sparse_moe.gate", c.NumExperts, c.HiddenSize),
				Routing: softmaxRouting(c, true),
				Experts: loadExperts(w, l, lp+"block_sparse_moe.", c.NumExperts, c.IntermediateSize, expertNames{"w1", "w3", "w2"}),
			}
	})
}
