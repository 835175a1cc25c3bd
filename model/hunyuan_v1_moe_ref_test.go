package model_test

import (
	"math"
	"slices"
	"testing"
)

// hunyuanSource names what the Hunyuan fixtures' reference.json comes from.
const hunyuanSource = "float64 Go transcription of transformers src/transformers/models/hunyuan_v1_moe/modeling_hunyuan_v1_moe.py (not transformers itself)"

// hunyuanShape is the tiny Hunyuan-A13B-shaped model of the fixtures.
var hunyuanShape = struct {
	vocab, hidden, inter, layers, heads, kvHeads, headDim, experts, topK int
	eps, theta, alpha                                                    float64
}{512, 128, 64, 2, 4, 2, 32, 16, 4, 1e-5, 10000, 1000}

// hunyuanConfig is the fixture's config.json: the field names and value
// kinds of Hunyuan-A13B-Instruct's (per-layer lists for moe_topk and
// friends, tied embeddings, the dynamic NTK alpha rope scaling).
func hunyuanConfig() map[string]any {
	s := hunyuanShape
	perLayer := func(v int) []int {
		out := make([]int, s.layers)
		for i := range out {
			out[i] = v
		}
		return out
	}
	return map[string]any{
		"architectures": []string{"HunYuanMoEV1ForCausalLM"}, "model_type": "hunyuan_v1_moe",
		"vocab_size": s.vocab, "hidden_size": s.hidden, "intermediate_size": s.inter,
		"num_hidden_layers": s.layers, "num_attention_heads": s.heads, "num_key_value_heads": s.kvHeads,
		"head_dim": s.headDim, "attention_head_dim": s.headDim, "hidden_act": "silu", "max_position_embeddings": 1024,
		"rms_norm_eps": s.eps, "rope_theta": s.theta,
		"rope_scaling": map[string]any{"alpha": s.alpha, "beta_fast": 32, "beta_slow": 1, "factor": 1.0,
			"mscale": 1.0, "mscale_all_dim": 1.0, "type": "dynamic"},
		"attention_bias": false, "attention_dropout": 0.0, "num_experts": s.experts,
		"moe_topk": perLayer(s.topK), "num_shared_expert": perLayer(1), "moe_intermediate_size": perLayer(s.inter),
		"use_mixed_mlp_moe": true, "use_qk_norm": true, "use_cla": false, "cla_share_factor": 2,
		"moe_drop_tokens": false, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
		"bos_token_id": nil, "eos_token_id": nil, "pad_token_id": nil,
	}
}

// buildHunyuan makes the weights of a Hunyuan fixture (bits 0: Hugging Face
// bf16 layout, else MLX) and the float64 transcription of transformers'
// HunYuanMoEV1ForCausalLM over exactly those weights:
//
//	attention: q, k, v projections; rotary embedding (rotate_half, base
//	  rope_theta * alpha^(d/(d-2)) for the dynamic alpha scaling); then
//	  query_layernorm / key_layernorm per head; causal GQA softmax; o_proj.
//	MoE: shared_mlp(x) + sum over top-k of softmax(gate.wg x), the k
//	  weights renormalised to sum to one, times expert(x).
func buildHunyuan(seed int64, bits int) (*f64Ckpt, *f64Decoder) {
	s := hunyuanShape
	g := newF64Ckpt(seed, bits)
	m := &f64Decoder{hidden: s.hidden, vocab: s.vocab, eps: s.eps}
	// Small embeddings: with the head tied, the residual stream would
	// otherwise keep pointing at the last token and greedy decoding repeat it.
	m.embed = g.linear("model.embed_tokens", s.vocab, s.hidden, 0.25)
	m.head = m.embed // tie_word_embeddings
	m.norm = g.norm("model.norm.weight", s.hidden)
	inv := f64RopeInvFreq(s.theta*math.Pow(s.alpha, float64(s.headDim)/float64(s.headDim-2)), s.headDim)
	type layer struct {
		attn         f64Attn
		qNorm, kNorm []float64
		router       []float64
		experts      []f64MLP
		shared       f64MLP
	}
	layers := make([]layer, s.layers)
	for l := range layers {
		p := m.addLayer(g, l)
		L := &layers[l]
		L.attn = g.attention(p+"self_attn.", s.hidden, s.heads, s.kvHeads, s.headDim)
		L.qNorm = g.norm(p+"self_attn.query_layernorm.weight", s.headDim)
		L.kNorm = g.norm(p+"self_attn.key_layernorm.weight", s.headDim)
		hStd := 1 / math.Sqrt(float64(s.hidden))
		if bits == 0 {
			// transformers keeps the router in float32 (nn.Linear(dtype=float32)).
			L.router = g.f32(p+"mlp.gate.wg.weight", []int{s.experts, s.hidden}, g.randn(s.experts*s.hidden, 3*hStd))
		} else {
			// 8-bit, as the other MLX fixtures quantize routers.
			L.router = g.linears(p+"mlp.gate.wg", 0, s.experts, s.hidden, 8, 3*hStd)[0]
		}
		L.experts = g.experts(p+"mlp.", s.experts, s.hidden, s.inter, f64SwiGLUNames)
		L.shared = g.mlp(p+"mlp.shared_mlp.", s.hidden, s.inter, f64SwiGLUNames)
	}
	m.attn = func(l int, h [][]float64) [][]float64 {
		L := layers[l]
		return L.attn.apply(h, func(pos int, q, k []float64) {
			f64RopeHalf(q, s.headDim, pos, inv)
			f64RopeHalf(k, s.headDim, pos, inv)
			f64RMSNorm(q, L.qNorm, s.eps) // per head: len(qNorm) is head_dim
			f64RMSNorm(k, L.kNorm, s.eps)
		})
	}
	m.moe = func(l int, h [][]float64) ([][]float64, [][]int, float64) {
		L := layers[l]
		out, routes, gap := make([][]float64, len(h)), make([][]int, len(h)), math.Inf(1)
		for t, x := range h {
			out[t] = L.shared.apply(x)
			logits := matvec(L.router, s.experts, x, nil)
			p := slices.Clone(logits)
			f64Softmax(p)
			routes[t] = f64TopK(p, s.topK)
			f64MixExperts(out[t], x, L.experts, routes[t], p)
			gap = min(gap, f64RouteGap(logits, s.topK))
		}
		return out, routes, gap
	}
	return g, m
}

// TestRegenHunyuan rewrites the hunyuan_v1_moe fixtures (MLX 4-bit and
// Hugging Face bf16) from the float64 transcription.
func TestRegenHunyuan(t *testing.T) {
	regenF64Fixtures(t, "hunyuan_v1_moe", hunyuanSource, hunyuanConfig, buildHunyuan, 21, 31)
}
