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
	h, vw, hv := w.cfg.HiddenSize, g.valueWidth(), g.ValueHeads
	part := func(name, dst string, rows int) InputProjection {
		return InputProjection{M: w.linear(p+name, rows, h), Blocks: []columnBlock{{dst, 0, 0, rows}}}
	}
	g.Inputs = []InputProjection{
		part("in_proj_qkv", "qkv", g.convChannels()),
		part("in_proj_z", "z", vw),
		part("in_proj_b", "b", hv),
		part("in_proj_a", "a", hv),
	}
	return g
}
