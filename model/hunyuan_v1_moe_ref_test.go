package model_test

import (
	"fmt"
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
	hStd := 1 / math.Sqrt(float64(s.hidden))
	m := &f64Decoder{hidden: s.hidden, vocab: s.vocab, eps: s.eps}
	// Small embeddings: with the head tied, the residual stream would
	// otherwise keep pointing at the last token and greedy decoding repeat it.
	m.embed = g.linear("model.embed_tokens", s.vocab, s.hidden, 0.25)
	m.head = m.embed // tie_word_embeddings
	m.norm = g.norm("model.norm.weight", s.hidden)
	qd, kd := s.heads*s.headDim, s.kvHeads*s.headDim
	inv := f64RopeInvFreq(s.theta*math.Pow(s.alpha, float64(s.headDim)/float64(s.headDim-2)), s.headDim)
	type layer struct {
		q, k, v, o, qNorm, kNorm, router []float64
		experts                          []f64MLP
		shared                           f64MLP
	}
	layers := make([]layer, s.layers)
	for l := range layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		m.inNorm = append(m.inNorm, g.norm(p+"input_layernorm.weight", s.hidden))
		m.post = append(m.post, g.norm(p+"post_attention_layernorm.weight", s.hidden))
		L := &layers[l]
		L.q = g.linear(p+"self_attn.q_proj", qd, s.hidden, hStd)
		L.k = g.linear(p+"self_attn.k_proj", kd, s.hidden, hStd)
		L.v = g.linear(p+"self_attn.v_proj", kd, s.hidden, hStd)
		L.o = g.linear(p+"self_attn.o_proj", s.hidden, qd, 1/math.Sqrt(float64(qd)))
		L.qNorm = g.norm(p+"self_attn.query_layernorm.weight", s.headDim)
		L.kNorm = g.norm(p+"self_attn.key_layernorm.weight", s.headDim)
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
		q, k, v := make([][]float64, len(h)), make([][]float64, len(h)), make([][]float64, len(h))
		for t, x := range h {
			q[t], k[t], v[t] = f64MatVec(L.q, x, qd), f64MatVec(L.k, x, kd), f64MatVec(L.v, x, kd)
			f64RopeHalf(q[t], s.headDim, t, inv)
			f64RopeHalf(k[t], s.headDim, t, inv)
			f64RMSNorm(q[t], L.qNorm, s.eps) // per head: len(qNorm) is head_dim
			f64RMSNorm(k[t], L.kNorm, s.eps)
		}
		out := f64Attention(q, k, v, s.heads, s.kvHeads, s.headDim)
		for t := range out {
			out[t] = f64MatVec(L.o, out[t], s.hidden)
		}
		return out
	}
	m.moe = func(l int, h [][]float64) ([][]float64, [][]int, float64) {
		L := layers[l]
		out, routes, gap := make([][]float64, len(h)), make([][]int, len(h)), math.Inf(1)
		for t, x := range h {
			out[t] = L.shared.apply(x)
			logits := f64MatVec(L.router, x, s.experts)
			p := slices.Clone(logits)
			f64Softmax(p)
			top := f64TopK(p, s.topK)
			var sum float64
			for _, e := range top {
				sum += p[e]
			}
			for _, e := range top {
				y := L.experts[e].apply(x)
				for i := range y {
					out[t][i] += p[e] / sum * y[i]
				}
			}
			routes[t], gap = top, min(gap, f64RouteGap(logits, s.topK))
		}
		return out, routes, gap
	}
	return g, m
}

// TestRegenHunyuan rewrites the hunyuan_v1_moe fixtures (MLX 4-bit and
// Hugging Face bf16) from the float64 transcription.
func TestRegenHunyuan(t *testing.T) {
	skipUnlessRegen(t)
	for _, fx := range []struct {
		name string
		bits int
		seed int64
	}{{"hunyuan_v1_moe-4bit", 4, 21}, {"hunyuan_v1_moe-hf-bf16", 0, 31}} {
		writeF64Fixture(t, fx.seed, func(seed int64) f64Fixture {
			g, m := buildHunyuan(seed, fx.bits)
			return f64Fixture{name: fx.name, family: "hunyuan_v1_moe", source: hunyuanSource, seed: seed, bits: fx.bits,
				config: hunyuanConfig(), ckpt: g, model: m,
				routerKey: func(l int) string { return fmt.Sprintf("model.layers.%d.mlp.gate", l) }}
		})
	}
}
