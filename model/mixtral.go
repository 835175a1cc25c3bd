package model

// Mixtral: GQA attention without q/k norm, softmax top-k routing with the
// chosen weights renormalised; the MoE block is named block_sparse_moe and
// Hugging Face checkpoints call the expert matrices w1 (gate), w3 (up) and
// w2 (down).
func init() { register("mixtral", loadMixtral) }

var mixtralNames = layerNames{
	Attention: "self_attn.",
	FFN:       "block_sparse_moe.",
	Router:    "gate",
	Experts:   expertNames{gate: "w1", up: "w3", down: "w2"},
}

func loadMixtral(w *weights) *Model {
	c, n := w.cfg, mixtralNames
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+n.Attention, attentionOptions{}),
			loadMoE(w, n, lp+n.FFN, l, softmaxRouting(c, true), c.IntermediateSize)
	})
}
