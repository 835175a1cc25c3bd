package model

// DeepSeek-V3 (and the checkpoints that reuse its model_type, such as Kimi
// K2): multi-head latent attention (mla.go) with YaRN rope scaling; the
// first first_k_dense_replace layers are dense, the others route with
// sigmoid scores plus e_score_correction_bias, group-limited top-k and
// routed_scaling_factor, and add shared experts (loadDeepSeekFFN). The
// multi-token-prediction layer stored after the last layer is not loaded.
func init() { register("deepseek_v3", loadDeepSeekV3) }

func loadDeepSeekV3(w *weights) *Model {
	c := w.cfg
	p := prefixOf(w.ix)
	m := loadCommon(w, p)
	opts := readMLAOptions(w)
	for l := 0; l < c.NumLayers; l++ {
		lp := layerPrefix(p, l)
		m.Layers = append(m.Layers, &Layer{
			InputNorm: w.vector(lp+"input_layernorm.weight", c.HiddenSize),
			PostNorm:  w.vector(lp+"post_attention_layernorm.weight", c.HiddenSize),
			Mixer:     loadMLA(w, lp+"self_attn.", opts),
			FFN:       loadDeepSeekFFN(w, lp+"mlp.", l),
		})
	}
	return m
}
