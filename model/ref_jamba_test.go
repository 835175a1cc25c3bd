package model_test

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// jambaRef is a float64 transcription of transformers' Jamba forward
// (models/jamba/modeling_jamba.py: JambaModel with JambaMambaMixer's
// slow_forward, JambaAttention without rotary embedding, JambaSparseMoeBlock
// and JambaMLP), written for these tests and independent of the engine: plain
// loops over float64 weights keyed by their Hugging Face names (per-expert
// modules), which the fixture generator takes from exactly the stored,
// dequantized tensors. It runs a whole sequence from an empty cache.
type jambaRef struct {
	cfg jambaRefConfig
	w   map[string][]float64
}

// jambaRefConfig holds the config.json values the forward reads.
type jambaRefConfig struct {
	Vocab, Hidden, Inter, Layers, Heads, KVHeads int
	Experts, TopK                                int
	AttnPeriod, AttnOffset                       int
	ExpertPeriod, ExpertOffset                   int
	DState, DConv, Expand, DtRank                int
	Eps                                          float64
	// ProjBias: in_proj and out_proj have biases (mamba_proj_bias);
	// NoConvBias: conv1d has none (mamba_conv_bias false).
	ProjBias, NoConvBias bool
}

// jambaRefOut is what one forward records.
type jambaRefOut struct {
	logits    [][]float64       // per position
	embedLast []float64         // embedding of the last position
	layerLast [][]float64       // decoder layer l's output at the last position
	routes    map[int][][]int32 // MoE layer -> per token, the chosen experts sorted
}

func (r *jambaRef) get(name string, n int) []float64 {
	v, ok := r.w[name]
	if !ok || len(v) != n {
		panic(fmt.Sprintf("jamba reference: weight %s: have %d values, want %d", name, len(v), n))
	}
	return v
}

// linear is x [t, in] W^T for W [out, in] (nn.Linear), plus the module's
// bias when the weights have one.
func (r *jambaRef) linear(name string, x [][]float64, out int) [][]float64 {
	in := len(x[0])
	w := r.get(name, out*in)
	bias := make([]float64, out)
	if _, ok := r.w[strings.TrimSuffix(name, ".weight")+".bias"]; ok {
		bias = r.get(strings.TrimSuffix(name, ".weight")+".bias", out)
	}
	y := make([][]float64, len(x))
	for t, row := range x {
		y[t] = make([]float64, out)
		for o := range out {
			acc := bias[o]
			for i, v := range row {
				acc += w[o*in+i] * v
			}
			y[t][o] = acc
		}
	}
	return y
}

// rmsnorm is LlamaRMSNorm: weight * x / sqrt(mean(x^2) + eps).
func (r *jambaRef) rmsnorm(name string, x [][]float64) [][]float64 {
	d := len(x[0])
	w := r.get(name, d)
	y := make([][]float64, len(x))
	for t, row := range x {
		var ss float64
		for _, v := range row {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(d)+r.cfg.Eps)
		y[t] = make([]float64, d)
		for i, v := range row {
			y[t][i] = w[i] * v * inv
		}
	}
	return y
}

func jambaSilu(v float64) float64 { return v / (1 + math.Exp(-v)) }

func jambaSoftplus(v float64) float64 {
	if v > 20 { // torch's threshold
		return v
	}
	return math.Log1p(math.Exp(v))
}

// attention is JambaAttention: GQA softmax attention with a causal mask,
// scaling head_dim^-0.5, no positional embedding.
func (r *jambaRef) attention(p string, h [][]float64) [][]float64 {
	c := r.cfg
	hd := c.Hidden / c.Heads
	q := r.linear(p+"q_proj.weight", h, c.Heads*hd)
	k := r.linear(p+"k_proj.weight", h, c.KVHeads*hd)
	v := r.linear(p+"v_proj.weight", h, c.KVHeads*hd)
	T := len(h)
	o := make([][]float64, T)
	scale := 1 / math.Sqrt(float64(hd))
	for t := range T {
		o[t] = make([]float64, c.Heads*hd)
		for hh := range c.Heads {
			g := hh / (c.Heads / c.KVHeads)
			scores := make([]float64, t+1)
			mx := math.Inf(-1)
			for s := 0; s <= t; s++ {
				var dot float64
				for i := range hd {
					dot += q[t][hh*hd+i] * k[s][g*hd+i]
				}
				scores[s] = dot * scale
				mx = math.Max(mx, scores[s])
			}
			var sum float64
			for s := range scores {
				scores[s] = math.Exp(scores[s] - mx)
				sum += scores[s]
			}
			for s := range scores {
				for i := range hd {
					o[t][hh*hd+i] += scores[s] / sum * v[s][g*hd+i]
				}
			}
		}
	}
	return r.linear(p+"o_proj.weight", o, c.Hidden)
}

// mamba is JambaMambaMixer.slow_forward without a cache: in_proj, the
// padded causal conv1d with bias and SiLU, x_proj and the dt/B/C norms,
// dt_proj + softplus, the discretized recurrence from a zero state, the D
// skip, the silu(gate) and out_proj.
func (r *jambaRef) mamba(p string, h [][]float64) [][]float64 {
	c := r.cfg
	C, N, K, R := c.Expand*c.Hidden, c.DState, c.DConv, c.DtRank
	T := len(h)
	proj := r.linear(p+"in_proj.weight", h, 2*C)
	convW, convB := r.get(p+"conv1d.weight", C*K), make([]float64, C)
	if !c.NoConvBias {
		convB = r.get(p+"conv1d.bias", C)
	}
	xs := make([][]float64, T)
	for t := range T {
		xs[t] = make([]float64, C)
		for ch := range C {
			acc := convB[ch]
			for j := range K {
				if s := t - (K - 1) + j; s >= 0 {
					acc += convW[ch*K+j] * proj[s][ch]
				}
			}
			xs[t][ch] = jambaSilu(acc)
		}
	}
	ssm := r.linear(p+"x_proj.weight", xs, R+2*N)
	split := func(lo, n int) [][]float64 {
		out := make([][]float64, T)
		for t := range T {
			out[t] = ssm[t][lo : lo+n]
		}
		return out
	}
	dtLow := r.rmsnorm(p+"dt_layernorm.weight", split(0, R))
	B := r.rmsnorm(p+"b_layernorm.weight", split(R, N))
	Cm := r.rmsnorm(p+"c_layernorm.weight", split(R+N, N))
	dt := r.linear(p+"dt_proj.weight", dtLow, C) // with dt_proj's bias
	aLog, D := r.get(p+"A_log", C*N), r.get(p+"D", C)
	state := make([]float64, C*N)
	y := make([][]float64, T)
	for t := range T {
		y[t] = make([]float64, C)
		for ch := range C {
			delta := jambaSoftplus(dt[t][ch])
			var acc float64
			for j := range N {
				a := -math.Exp(aLog[ch*N+j])
				state[ch*N+j] = math.Exp(a*delta)*state[ch*N+j] + delta*B[t][j]*xs[t][ch]
				acc += state[ch*N+j] * Cm[t][j]
			}
			acc += xs[t][ch] * D[ch]
			y[t][ch] = acc * jambaSilu(proj[t][C+ch])
		}
	}
	return r.linear(p+"out_proj.weight", y, c.Hidden)
}

// mlp is JambaMLP (Mistral's): down(silu(gate x) * up x).
func (r *jambaRef) mlp(p string, h [][]float64) [][]float64 {
	c := r.cfg
	g := r.linear(p+"gate_proj.weight", h, c.Inter)
	u := r.linear(p+"up_proj.weight", h, c.Inter)
	for t := range g {
		for i := range g[t] {
			g[t][i] = jambaSilu(g[t][i]) * u[t][i]
		}
	}
	return r.linear(p+"down_proj.weight", g, c.Hidden)
}

// moe is JambaSparseMoeBlock: softmax over the router logits, the top-k
// probabilities (not renormalised) weighting each chosen expert's MLP.
func (r *jambaRef) moe(p string, h [][]float64) ([][]float64, [][]int32) {
	c := r.cfg
	logits := r.linear(p+"router.weight", h, c.Experts)
	out := make([][]float64, len(h))
	routes := make([][]int32, len(h))
	for t := range h {
		probs := make([]float64, c.Experts)
		mx := math.Inf(-1)
		for _, v := range logits[t] {
			mx = math.Max(mx, v)
		}
		var sum float64
		for e, v := range logits[t] {
			probs[e] = math.Exp(v - mx)
			sum += probs[e]
		}
		order := make([]int, c.Experts)
		for e := range order {
			order[e] = e
			probs[e] /= sum
		}
		sort.SliceStable(order, func(i, j int) bool { return probs[order[i]] > probs[order[j]] })
		out[t] = make([]float64, c.Hidden)
		for _, e := range order[:c.TopK] {
			y := r.mlp(fmt.Sprintf("%sexperts.%d.", p, e), h[t:t+1])[0]
			for i, v := range y {
				out[t][i] += probs[e] * v
			}
			routes[t] = append(routes[t], int32(e))
		}
		sort.Slice(routes[t], func(i, j int) bool { return routes[t][i] < routes[t][j] })
	}
	return out, routes
}

// forward runs ids through JambaForCausalLM.
func (r *jambaRef) forward(ids []int32) jambaRefOut {
	c := r.cfg
	embed := r.get("model.embed_tokens.weight", c.Vocab*c.Hidden)
	x := make([][]float64, len(ids))
	for t, id := range ids {
		x[t] = append([]float64(nil), embed[int(id)*c.Hidden:(int(id)+1)*c.Hidden]...)
	}
	out := jambaRefOut{embedLast: append([]float64(nil), x[len(x)-1]...), routes: map[int][][]int32{}}
	add := func(y [][]float64) {
		for t := range x {
			for i := range x[t] {
				x[t][i] += y[t][i]
			}
		}
	}
	for l := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		h := r.rmsnorm(p+"input_layernorm.weight", x)
		if l%c.AttnPeriod == c.AttnOffset {
			add(r.attention(p+"self_attn.", h))
		} else {
			add(r.mamba(p+"mamba.", h))
		}
		h = r.rmsnorm(p+"pre_ff_layernorm.weight", x)
		if c.Experts > 1 && l%c.ExpertPeriod == c.ExpertOffset {
			y, routes := r.moe(p+"feed_forward.", h)
			add(y)
			out.routes[l] = routes
		} else {
			add(r.mlp(p+"feed_forward.", h))
		}
		out.layerLast = append(out.layerLast, append([]float64(nil), x[len(x)-1]...))
	}
	out.logits = r.linear("lm_head.weight", r.rmsnorm("model.final_layernorm.weight", x), c.Vocab)
	return out
}
