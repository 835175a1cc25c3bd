package model

// GLM-4.7-Flash (glm4_moe_lite): DeepSeek-V3's architecture at a smaller
// size: multi-head latent attention (mla.go) and the sigmoid-routed MoE
// with shared experts (loadDeepSeekFFN). Which layers are dense is given by
// mlp_layer_types ("dense"/"sparse") when the config has it, else by
// first_k_dense_replace.
func init() { register("glm4_moe_lite", loadGLM4MoELite) }

func loadGLM4MoELite(w *weights) *Model {
	c := w.cfg
	if t := c.MLPLayerTypes; t != nil {
		if len(t) != c.NumLayers {
			w.fail("%s: mlp_layer_types has %d entries, num_hidden_layers is %d", c.Path, len(t), c.NumLayers)
			return nil
		}
		// loadDeepSeekFFN places dense layers by first_k_dense_replace.
		for l, kind := range t {
			if want := map[bool]string{true: "dense", false: "sparse"}[l < c.FirstKDenseReplace]; kind != want {
				w.fail("%s: mlp_layer_types[%d] is %q but first_k_dense_replace %d makes it %s (only a dense prefix is supported)",
					c.Path, l, kind, c.FirstKDenseReplace, want)
				return nil
			}
		}
	}
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		return loadMLA(w, lp+deepSeekNames.Attention), loadDeepSeekFFN(w, lp+deepSeekNames.FFN, l)
	})
}
