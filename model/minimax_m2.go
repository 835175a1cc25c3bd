package model

import "github.com/mlx-moe/mlx-moe/kernels"

// MiniMax-M2 / M2.1 (minimax_m2): GQA attention with q/k RMSNorm over the
// whole projection (before the rotary embedding, as OLMoE) and partial
// rotary over the first rotary_dim values of each head; every layer is a
// sparse MoE block (block_sparse_moe) routed by sigmoid scores plus
// e_score_correction_bias for the choice, the chosen scores renormalised.
// Hugging Face checkpoints name the expert matrices w1 (gate), w3 (up) and
// w2 (down), as Mixtral; MLX stacks them in switch_mlp.
func init() { register("minimax_m2", loadMiniMaxM2) }

var miniMaxNames = layerNames{
	Attention:  "self_attn.",
	FFN:        "block_sparse_moe.",
	Router:     "gate",
	RouterBias: "e_score_correction_bias",
	Experts:    mixtralNames.Experts,
}

func loadMiniMaxM2(w *weights) *Model {
	c, n := w.cfg, miniMaxNames
	rot := c.RotaryDim
	if rot == 0 {
		rot = c.HeadDim / 2 // transformers' default
	}
	switch {
	case rot < 2 || rot > c.HeadDim || rot%2 != 0:
		w.fail("%s: rotary_dim %d must be even and between 2 and head_dim %d", c.Path, rot, c.HeadDim)
	case c.ScoringFunc != "" && c.ScoringFunc != "sigmoid":
		w.fail("%s: scoring_func %q is not supported for minimax_m2 (sigmoid is)", c.Path, c.ScoringFunc)
	case c.QKNormType != "" && c.QKNormType != "per_layer":
		w.fail("%s: qk_norm_type %q is not supported for minimax_m2 (per_layer, over the whole projection, is)", c.Path, c.QKNormType)
	case c.SharedIntermediateSize > 0:
		w.fail("%s: shared_intermediate_size %d: minimax_m2 with a shared expert is not supported", c.Path, c.SharedIntermediateSize)
	case c.NumExperts < 2:
		w.fail("%s: num_local_experts %d: minimax_m2 needs routed experts", c.Path, c.NumExperts)
	}
	for l, t := range c.AttnTypeList {
		if t != 1 {
			w.fail("%s: attn_type_list[%d] is %d: only softmax attention layers (1) are supported, not MiniMax's lightning attention", c.Path, l, t)
			break
		}
	}
	if w.err != nil {
		return nil
	}
	c.PartialRotaryFactor = float64(rot) / float64(c.HeadDim)
	routing := func(p string) kernels.Routing {
		return kernels.Routing{TopK: c.NumExpertsPerTok, Sigmoid: true, Normalize: true, Scale: 1,
			CorrectionBias: w.optVector(p+n.RouterBias, c.NumExperts)}
	}
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		p := lp + n.FFN
		return loadAttention(w, lp+n.Attention, attentionOptions{normWhole: true}),
			loadMoE(w, n, p, l, routing(p), c.IntermediateSize)
	})
}
