package model

// Qwen3.5-MoE (Qwen3.5-35B-A3B, 122B-A10B, 397B-A17B): the Qwen3-Next
// hybrid stack with the linear-attention input projection split into
// in_proj_qkv ([q | k | v], heads contiguous), in_proj_z, in_proj_b and
// in_proj_a. The checkpoints are multimodal: config.json nests the language
// model under text_config (ParseConfig flattens it) and the weights sit
// under language_model.model. (MLX) or model.language_model. (Hugging
// Face); vision weights are not read.
func init() {
	load := func(w *weights) *Model { return loadHybrid(w, loadQwen3_5DeltaNet) }
	register("qwen3_5_moe", load)
	register("qwen3_5_moe_text", load)
}

func loadQwen3_5DeltaNet(w *weights, p string) *GatedDeltaNet {
	g := deltaNetShape(w)
	loadDeltaNetCommon(w, p, g)
	if w.err != nil {
		return g
	}
	h, kw, vw, hv := w.cfg.HiddenSize, g.keyWidth(), g.valueWidth(), g.ValueHeads
	if qkv := w.linear(p+"in_proj_qkv", g.convChannels(), h); qkv != nil {
		g.Q, g.K, g.V = rowBlock(qkv, 0, kw), rowBlock(qkv, kw, kw), rowBlock(qkv, 2*kw, vw)
	}
	g.Z = w.linear(p+"in_proj_z", vw, h)
	g.B = w.linear(p+"in_proj_b", hv, h)
	g.A = w.linear(p+"in_proj_a", hv, h)
	return g
}
