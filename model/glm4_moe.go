package model

import "github.com/mlx-moe/mlx-moe/kernels"

// GLM-4.5/4.6 MoE: attention with q/k/v biases, optional per-head q/k norm
// and partial rotary; the first first_k_dense_replace layers are dense; the
// MoE layers route with sigmoid scores plus e_score_correction_bias,
// group-limited top-k and routed_scaling_factor, and add shared experts.
func init() { register("glm4_moe", loadGLM4MoE) }

func loadGLM4MoE(w *weights) *Model {
	c := w.cfg
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadAttention(w, lp+deepSeekNames.Attention, attentionOptions{bias: c.AttentionBias, qkNorm: c.UseQKNorm}),
			loadDeepSeekFFN(w, lp+deepSeekNames.FFN, l)
	})
}

// loadDeepSeekFFN reads the feed-forward block shared by GLM-4.x MoE and
// the DeepSeek-V3 family: dense for the first first_k_dense_replace layers,
// then sigmoid-routed experts with shared experts.
func loadDeepSeekFFN(w *weights, p string, layer int) FFN {
	c, n := w.cfg, deepSeekNames
	if layer < c.FirstKDenseReplace {
		return loadMLP(w, p, c.IntermediateSize)
	}
	moe := loadMoE(w, n, p, layer, kernels.Routing{TopK: c.NumExpertsPerTok, Sigmoid: true, Normalize: normTopK(c, true),
		CorrectionBias: w.optVector(p+n.RouterBias, c.NumExperts),
		Groups:         c.NGroup, TopKGroups: c.TopKGroup, Scale: float32(c.RoutedScalingFactor)}, c.MoEIntermediateSize)
	if c.NumSharedExperts > 0 {
		moe.Shared = loadMLP(w, p+n.Shared, c.MoEIntermediateSize*c.NumSharedExperts)
	}
	return moe
}
