package model_test

import (
	"math"
	"slices"
	"testing"
)

// miniMaxSource names what the MiniMax-M2 fixtures' reference.json comes from.
const miniMaxSource = "float64 Go transcription of transformers src/transformers/models/minimax_m2/modeling_minimax_m2.py (not transformers itself)"

// miniMaxShape is the tiny MiniMax-M2-shaped model of the fixtures.
var miniMaxShape = struct {
	vocab, hidden, inter, layers, heads, kvHeads, headDim, rotaryDim, experts, topK int
	eps, theta                                                                      float64
}{512, 128, 64, 2, 4, 2, 32, 16, 16, 4, 1e-6, 5e6}

// miniMaxConfig is the fixture's config.json, with the keys of
// MiniMax-M2's own config.json (rotary_dim, scoring_func, qk_norm_type,
// attn_type_list, ...).
func miniMaxConfig() map[string]any {
	s := miniMaxShape
	attnTypes := make([]int, s.layers)
	for i := range attnTypes {
		attnTypes[i] = 1
	}
	return map[string]any{
		"architectures": []string{"MiniMaxM2ForCausalLM"}, "model_type": "minimax_m2",
		"vocab_size": s.vocab, "hidden_size": s.hidden, "intermediate_size": s.inter,
		"num_hidden_layers": s.layers, "num_attention_heads": s.heads, "num_key_value_heads": s.kvHeads,
		"head_dim": s.headDim, "rotary_dim": s.rotaryDim, "rope_theta": s.theta, "rms_norm_eps": s.eps,
		"hidden_act": "silu", "max_position_embeddings": 1024,
		"num_local_experts": s.experts, "num_experts_per_tok": s.topK, "scoring_func": "sigmoid",
		"use_routing_bias": true, "use_qk_norm": true, "qk_norm_type": "per_layer", "attn_type_list": attnTypes,
		"shared_intermediate_size": 0, "router_jitter_noise": 0.0, "tie_word_embeddings": false,
		"torch_dtype": "bfloat16", "bos_token_id": nil, "eos_token_id": nil, "pad_token_id": nil,
	}
}

// buildMiniMax makes the weights of a MiniMax-M2 fixture (bits 0: Hugging
// Face bf16 layout with the hub's block_sparse_moe names, else MLX) and the
// float64 transcription of transformers' MiniMaxM2ForCausalLM over exactly
// those weights:
//
//	attention: q, k, v projections; q_norm / k_norm over the whole
//	  projection; rotary embedding (rotate_half) on the first rotary_dim
//	  values of each head; causal GQA softmax; o_proj.
//	MoE: sigmoid(gate x); experts chosen by top-k of the sigmoid plus
//	  e_score_correction_bias; weights the chosen sigmoids over their sum.
func buildMiniMax(seed int64, bits int) (*f64Ckpt, *f64Decoder) {
	s := miniMaxShape
	g := newF64Ckpt(seed, bits)
	hStd := 1 / math.Sqrt(float64(s.hidden))
	m := &f64Decoder{hidden: s.hidden, vocab: s.vocab, eps: s.eps}
	m.embed = g.linear("model.embed_tokens", s.vocab, s.hidden, 1)
	m.norm = g.norm("model.norm.weight", s.hidden)
	m.head = g.linear("lm_head", s.vocab, s.hidden, hStd)
	inv := f64RopeInvFreq(s.theta, s.rotaryDim)
	type layer struct {
		attn                       f64Attn
		qNorm, kNorm, router, bias []float64
		experts                    []f64MLP
	}
	layers := make([]layer, s.layers)
	for l := range layers {
		p := m.addLayer(g, l)
		L := &layers[l]
		L.attn = g.attention(p+"self_attn.", s.hidden, s.heads, s.kvHeads, s.headDim)
		L.qNorm = g.norm(p+"self_attn.q_norm.weight", s.heads*s.headDim)
		L.kNorm = g.norm(p+"self_attn.k_norm.weight", s.kvHeads*s.headDim)
		moe := p + "block_sparse_moe."
		if bits == 0 {
			L.router = g.linear(moe+"gate", s.experts, s.hidden, 3*hStd)
		} else {
			// mlx-lm's quant_predicate keeps the router at 8 bits.
			L.router = g.linears(moe+"gate", 0, s.experts, s.hidden, 8, 3*hStd)[0]
		}
		// The correction bias stays float32 in both layouts.
		L.bias = g.f32(moe+"e_score_correction_bias", []int{s.experts}, g.randn(s.experts, 0.05))
		L.experts = g.experts(moe, s.experts, s.hidden, s.inter, [3]string{"w1", "w3", "w2"})
	}
	m.attn = func(l int, h [][]float64) [][]float64 {
		L := layers[l]
		return L.attn.apply(h, func(pos int, q, k []float64) {
			f64RMSNorm(q, L.qNorm, s.eps) // len(qNorm) is the whole projection
			f64RMSNorm(k, L.kNorm, s.eps)
			f64RopeHalf(q, s.headDim, pos, inv)
			f64RopeHalf(k, s.headDim, pos, inv)
		})
	}
	m.moe = func(l int, h [][]float64) ([][]float64, [][]int, float64) {
		L := layers[l]
		out, routes, gap := make([][]float64, len(h)), make([][]int, len(h)), math.Inf(1)
		for t, x := range h {
			out[t] = make([]float64, s.hidden)
			scores := matvec(L.router, s.experts, x, nil)
			for i, v := range scores {
				scores[i] = 1 / (1 + math.Exp(-v))
			}
			choice := slices.Clone(scores)
			f64AddTo(choice, L.bias)
			routes[t] = f64TopK(choice, s.topK)
			f64MixExperts(out[t], x, L.experts, routes[t], scores)
			// A sigmoid moves at most 1/4 as fast as its logit.
			gap = min(gap, 4*f64RouteGap(choice, s.topK))
		}
		return out, routes, gap
	}
	return g, m
}

// TestRegenMiniMaxM2 rewrites the minimax_m2 fixtures (MLX 4-bit and
// Hugging Face bf16) from the float64 transcription.
func TestRegenMiniMaxM2(t *testing.T) {
	regenF64Fixtures(t, "minimax_m2", miniMaxSource, miniMaxConfig, buildMiniMax, 41, 51)
}
