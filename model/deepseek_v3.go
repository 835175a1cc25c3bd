package model

// DeepSeek-V3 (and the checkpoints that reuse its model_type, such as Kimi
// K2): multi-head latent attention (mla.go) with YaRN rope scaling; the
// first first_k_dense_replace layers are dense, the others route with
// sigmoid scores plus e_score_correction_bias, group-limited top-k and
// routed_scaling_factor, and add shared experts (loadDeepSeekFFN). The
// multi-token-prediction layer stored after the last layer is not loaded.
func init() { register("deepseek_v3", loadDeepSeekV3) }

func loadDeepSeekV3(w *weights) *Model {
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadMLA(w, lp+deepSeekNames.Attention), loadDeepSeekFFN(w, lp+deepSeekNames.FFN, l)
	})
}
