package model

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Hunyuan-A13B (hunyuan_v1_moe): GQA attention whose per-head q/k RMSNorms
// (query_layernorm, key_layernorm) come after the rotary embedding, rope
// with Hunyuan's dynamic NTK alpha scaling (ropeFor), and in every layer a
// softmax top-k MoE (weights renormalised) over experts of
// intermediate_size plus an always-on shared MLP. The router is
// mlp.gate.wg.
//
// Cross-layer attention: use_cla and cla_share_factor are read and, as in
// transformers' hunyuan_v1_moe (the reference: its config does not declare
// them and its model is Llama's, every layer projecting its own K and V),
// change nothing. Hunyuan-A13B's own config has use_cla false. A checkpoint
// that does share K/V across layers (Tencent's remote code for Hunyuan-Large
// leaves k_proj/v_proj out of the sharing layers) fails to load naming the
// missing k_proj, where transformers would fill it with random weights.
//
// The alpha-scaled rope base applies at every position, as in Tencent's
// code and mlx-lm; transformers' dynamic_rope_update swaps in plain dynamic
// NTK frequencies (without alpha) past max_position_embeddings, which the
// context length here never exceeds by default.
func init() { register("hunyuan_v1_moe", loadHunyuanMoE) }

var hunyuanNames = layerNames{
	Attention: "self_attn.",
	FFN:       "mlp.",
	Router:    "gate.wg",
	Experts:   swigluNames,
	Shared:    "shared_mlp.",
}

func loadHunyuanMoE(w *weights) *Model {
	c, n := w.cfg, hunyuanNames
	switch {
	case c.AttentionBias:
		w.fail("%s: attention_bias is not supported for hunyuan_v1_moe (its o_proj would need a bias too)", c.Path)
		return nil
	case c.NumExperts < 2:
		w.fail("%s: num_experts %d: hunyuan_v1_moe needs routed experts", c.Path, c.NumExperts)
		return nil
	}
	shared := c.UseMixedMLPMoE == nil || *c.UseMixedMLPMoE
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		a := loadAttention(w, lp+n.Attention, attentionOptions{})
		if c.UseQKNorm {
			a.QNorm = w.vector(lp+n.Attention+"query_layernorm.weight", a.HeadDim)
			a.KNorm = w.vector(lp+n.Attention+"key_layernorm.weight", a.HeadDim)
			a.NormAfterRope = true
		}
		moe := loadMoE(w, n, lp+n.FFN, l, softmaxRouting(c, true), c.IntermediateSize)
		if shared {
			moe.Shared = loadMLP(w, lp+n.FFN+n.Shared, c.IntermediateSize*max(1, c.NumSharedExpert))
		}
		return a, moe
	})
}

// perLayerKeys are config keys Hunyuan may give as one value per layer.
var perLayerKeys = []string{"num_experts", "moe_topk", "num_shared_expert", "moe_intermediate_size"}

// flattenPerLayer replaces a per-layer list of equal integers under one of
// perLayerKeys with the integer (Hunyuan-A13B writes moe_topk as [8, 8,
// ...]); lists whose values differ are an error naming the key, since every
// layer is built alike. It reports whether anything changed.
func flattenPerLayer(top map[string]json.RawMessage) (map[string]json.RawMessage, bool, error) {
	changed := false
	for _, k := range perLayerKeys {
		raw, ok := top[k]
		if !ok || len(raw) == 0 || raw[0] != '[' {
			continue
		}
		var vals []int
		if err := json.Unmarshal(raw, &vals); err != nil {
			return nil, false, fmt.Errorf("%s: expected an integer or a list of integers: %v", k, err)
		}
		if len(vals) == 0 {
			return nil, false, fmt.Errorf("%s: empty list", k)
		}
		if slices.Min(vals) != slices.Max(vals) {
			return nil, false, fmt.Errorf("%s: per-layer values differ (%v); only the same value in every layer is supported", k, vals)
		}
		if !changed {
			top = maps.Clone(top) // the caller's map stays as it was
			changed = true
		}
		top[k], _ = json.Marshal(vals[0])
	}
	return top, changed, nil
}

// ntkAlphaBase is the rope base of Hunyuan's dynamic NTK alpha scaling for
// a rotary width of dim.
func ntkAlphaBase(theta, alpha float64, dim int) float64 {
	return theta * math.Pow(alpha, float64(dim)/float64(dim-2))
}
