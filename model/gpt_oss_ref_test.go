package model_test

// A float64 Go transcription of transformers' gpt-oss forward pass
// (src/transformers/models/gpt_oss/modeling_gpt_oss.py: GptOssRMSNorm,
// GptOssAttention with eager_attention_forward's sinks and the sliding
// window mask, GptOssTopKRouter, GptOssExperts, YaRN from
// modeling_rope_utils) and the generator of the gpt_oss fixtures it makes
// references for. No transformers was available where these fixtures were
// made (no GPU machine, no PyTorch), so reference.json says so in its
// "source" field; a transformers-made reference should replace it.
//
// Regenerate with MLXMOE_REGEN=1 go test ./model/ -run TestRegenGptOSS.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// gptOSSSpec is the tiny configuration both fixtures share.
type gptOSSSpec struct {
	vocab, hidden, inter, layers, heads, kvHeads, headDim, experts, topK, window int
	eps, theta                                                                   float64
	yarnFactor, betaFast, betaSlow                                               float64
	origMax                                                                      int
	layerTypes                                                                   []string
}

var gptOSSTiny = gptOSSSpec{vocab: 512, hidden: 64, inter: 64, layers: 4, heads: 4, kvHeads: 2, headDim: 16,
	experts: 16, topK: 4, window: 4, eps: 1e-5, theta: 150000, yarnFactor: 32, betaFast: 32, betaSlow: 1, origMax: 64,
	layerTypes: []string{"sliding_attention", "full_attention", "sliding_attention", "full_attention"}}

// gptOSSLayer is one decoder layer's weights as float64, exactly the values
// the stored (quantized or bf16) tensors decode to. Matrices are [out, in]
// row-major.
type gptOSSLayer struct {
	inNorm, postNorm           []float64
	wq, bq, wk, bk, wv, bv     []float64
	wo, bo, sinks              []float64
	wr, br                     []float64
	gate, up, down             [][]float64 // per expert
	gateBias, upBias, downBias [][]float64
}

type gptOSSRef struct {
	s gptOSSSpec
	// Ablations for TestGptOSSFixtureExercises: drop the sinks, use a
	// different clamp (0: 7).
	noSinks        bool
	limit          float64
	embed, lmHead  []float64
	norm           []float64
	layers         []gptOSSLayer
	invFreq        []float64
	attentionScale float64
}

// ossYaRNInvFreq is _compute_yarn_parameters with truncate false.
func ossYaRNInvFreq(s gptOSSSpec) ([]float64, float64) {
	dim := float64(s.headDim)
	corr := func(rot float64) float64 {
		return dim * math.Log(float64(s.origMax)/(rot*2*math.Pi)) / (2 * math.Log(s.theta))
	}
	low, high := math.Max(corr(s.betaFast), 0), math.Min(corr(s.betaSlow), dim-1)
	if low == high {
		high += 0.001
	}
	inv := make([]float64, s.headDim/2)
	for i := range inv {
		pos := math.Pow(s.theta, float64(2*i)/dim)
		ramp := math.Min(math.Max((float64(i)-low)/(high-low), 0), 1)
		extrap := 1 - ramp
		inv[i] = 1/(s.yarnFactor*pos)*(1-extrap) + 1/pos*extrap
	}
	return inv, 0.1*math.Log(s.yarnFactor) + 1
}

func ossRMSNorm(x, w []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = w[i] * v * inv
	}
	return out
}

// rotateHalf applies _apply_rotary_emb to one head at position pos.
func (m *gptOSSRef) rotateHalf(v []float64, pos int) {
	half := len(v) / 2
	for i := 0; i < half; i++ {
		a := float64(pos) * m.invFreq[i]
		c, s := math.Cos(a)*m.attentionScale, math.Sin(a)*m.attentionScale
		x1, x2 := v[i], v[i+half]
		v[i], v[i+half] = x1*c-x2*s, x2*c+x1*s
	}
}

// gptOSSTrace is what one forward pass records.
type gptOSSTrace struct {
	logits    [][]float64 // per position
	embedLast []float64
	layerLast [][]float64 // per layer, last position
	routes    [][][]int32 // per layer, per position, sorted
}

// forward runs the whole sequence (transformers' prefill).
func (m *gptOSSRef) forward(ids []int32) *gptOSSTrace {
	s := m.s
	n, h, hd := len(ids), s.hidden, s.headDim
	tr := &gptOSSTrace{}
	x := make([][]float64, n)
	for t, id := range ids {
		x[t] = slices.Clone(m.embed[int(id)*h : (int(id)+1)*h])
	}
	tr.embedLast = slices.Clone(x[n-1])
	group := s.heads / s.kvHeads
	scale := 1 / math.Sqrt(float64(hd))
	for l, L := range m.layers {
		// Attention block.
		q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for t := range x {
			hn := ossRMSNorm(x[t], L.inNorm, s.eps)
			q[t] = matvec(L.wq, s.heads*hd, hn, L.bq)
			k[t] = matvec(L.wk, s.kvHeads*hd, hn, L.bk)
			v[t] = matvec(L.wv, s.kvHeads*hd, hn, L.bv)
			for i := 0; i < s.heads; i++ {
				m.rotateHalf(q[t][i*hd:(i+1)*hd], t)
			}
			for i := 0; i < s.kvHeads; i++ {
				m.rotateHalf(k[t][i*hd:(i+1)*hd], t)
			}
		}
		sliding := s.layerTypes[l] == "sliding_attention"
		for t := range x {
			att := make([]float64, s.heads*hd)
			for i := 0; i < s.heads; i++ {
				g := i / group
				var logits []float64
				var keys []int
				for j := 0; j <= t; j++ {
					if sliding && t-j >= s.window { // kv_idx > q_idx - sliding_window
						continue
					}
					var d float64
					for c := 0; c < hd; c++ {
						d += q[t][i*hd+c] * k[j][g*hd+c]
					}
					logits = append(logits, d*scale)
					keys = append(keys, j)
				}
				combined := slices.Clone(logits)
				if !m.noSinks {
					combined = append(combined, L.sinks[i])
				}
				mx := slices.Max(combined)
				var sum float64
				for _, c := range combined {
					sum += math.Exp(c - mx)
				}
				for a, j := range keys {
					p := math.Exp(logits[a]-mx) / sum
					for c := 0; c < hd; c++ {
						att[i*hd+c] += p * v[j][g*hd+c]
					}
				}
			}
			o := matvec(L.wo, h, att, L.bo)
			for c := range o {
				x[t][c] += o[c]
			}
		}
		// MoE block.
		var layerRoutes [][]int32
		for t := range x {
			hn := ossRMSNorm(x[t], L.postNorm, s.eps)
			logits := matvec(L.wr, s.experts, hn, L.br)
			order := make([]int, s.experts)
			for i := range order {
				order[i] = i
			}
			sort.SliceStable(order, func(a, b int) bool { return logits[order[a]] > logits[order[b]] })
			top := order[:s.topK]
			mx := logits[top[0]]
			var sum float64
			for _, e := range top {
				sum += math.Exp(logits[e] - mx)
			}
			out := make([]float64, h)
			var ids []int32
			limit := 7.0
			if m.limit != 0 {
				limit = m.limit
			}
			for _, e := range top {
				w := math.Exp(logits[e]-mx) / sum
				gate := matvec(L.gate[e], s.inter, hn, L.gateBias[e])
				up := matvec(L.up[e], s.inter, hn, L.upBias[e])
				act := make([]float64, s.inter)
				for i := range act {
					g := math.Min(gate[i], limit)
					u := math.Max(math.Min(up[i], limit), -limit)
					act[i] = (u + 1) * g / (1 + math.Exp(-1.702*g))
				}
				y := matvec(L.down[e], h, act, L.downBias[e])
				for c := range out {
					out[c] += w * y[c]
				}
				ids = append(ids, int32(e))
			}
			slices.Sort(ids)
			layerRoutes = append(layerRoutes, ids)
			for c := range out {
				x[t][c] += out[c]
			}
		}
		tr.routes = append(tr.routes, layerRoutes)
		tr.layerLast = append(tr.layerLast, slices.Clone(x[n-1]))
	}
	for t := range x {
		tr.logits = append(tr.logits, matvec(m.lmHead, s.vocab, ossRMSNorm(x[t], m.norm, s.eps), nil))
	}
	return tr
}

// --- stored weights: random values in the checkpoint formats, and what
// they decode to (the reference's weights).

// ossBF16 rounds to bfloat16 (nearest even) and returns the bits and value.
func ossBF16(x float64) (uint16, float64) {
	b := math.Float32bits(float32(x))
	b += 0x7fff + (b>>16)&1
	h := uint16(b >> 16)
	return h, float64(math.Float32frombits(uint32(h) << 16))
}

func ossBF16Tensor(shape []int, v []uint16) fixture.Tensor {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return fixture.Tensor{DType: "BF16", Shape: shape, Data: b}
}

// gptOSSLayout is how a fixture stores the weights.
type gptOSSLayout int

const (
	ossMLX     gptOSSLayout = iota // mlx-lm: affine 8-bit dense weights, MXFP4 experts split in gate/up/down
	ossHFMXFP4                     // OpenAI's checkpoint: bf16 dense weights, MXFP4 gate_up (interleaved) and down blocks
	ossHFBF16                      // transformers' bf16 checkpoint: the MLX fixture's values in bf16, experts [E, in, out]
)

// gptOSSFixtures are the generated fixtures: the HF bf16 one draws the
// MLX one's values (same seed).
var gptOSSFixtures = []struct {
	name, layout string
	store        gptOSSLayout
	seed         uint64
}{
	{"gpt_oss-mxfp4-q8", "mlx", ossMLX, 1},
	{"gpt_oss-hf-mxfp4", "hf", ossHFMXFP4, 2},
	{"gpt_oss-hf-bf16", "hf", ossHFBF16, 1},
}

// gptOSSWriter draws weights and records their stored tensors.
type gptOSSWriter struct {
	rng     *rand.Rand
	tensors map[string]fixture.Tensor
	layout  gptOSSLayout
}

// floats draws n bf16 values mean + std·N(0,1) stored under name with shape.
func (g *gptOSSWriter) floats(name string, shape []int, mean, std float64) []float64 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	raw, out := make([]uint16, n), make([]float64, n)
	for i := range raw {
		raw[i], out[i] = ossBF16(mean + std*g.rng.NormFloat64())
	}
	g.tensors[name] = ossBF16Tensor(shape, raw)
	return out
}

// dense draws a [rows, cols] weight of about the given std: bf16 in the HF
// MXFP4 layout, MLX affine 8-bit in groups of 64 (uniform codes, bf16
// scales and biases) in the MLX layout, and those values rounded to bf16 in
// the HF bf16 layout.
func (g *gptOSSWriter) dense(module string, rows, cols int, std float64) []float64 {
	if g.layout == ossHFMXFP4 {
		return g.floats(module+".weight", []int{rows, cols}, 0, std)
	}
	const group = 64
	words := make([]byte, rows*cols)
	sc, bi := make([]uint16, rows*cols/group), make([]uint16, rows*cols/group)
	out := make([]float64, rows*cols)
	for gi := range sc {
		var s, b float64
		sc[gi], s = ossBF16(std * math.Sqrt(12) / 255 * (0.8 + 0.4*g.rng.Float64()))
		bi[gi], b = ossBF16(-127.5*s + 0.1*std*g.rng.NormFloat64())
		for j := gi * group; j < (gi+1)*group; j++ {
			q := g.rng.IntN(256)
			words[j] = byte(q) // 8-bit codes, four to a little-endian word
			out[j] = s*float64(q) + b
		}
	}
	if g.layout == ossHFBF16 {
		raw := make([]uint16, len(out))
		for i, v := range out {
			raw[i], out[i] = ossBF16(v)
		}
		g.tensors[module+".weight"] = ossBF16Tensor([]int{rows, cols}, raw)
		return out
	}
	g.tensors[module+".weight"] = fixture.Tensor{DType: "U32", Shape: []int{rows, cols / 4}, Data: words}
	g.tensors[module+".scales"] = ossBF16Tensor([]int{rows, cols / group}, sc)
	g.tensors[module+".biases"] = ossBF16Tensor([]int{rows, cols / group}, bi)
	return out
}

// ossE2M1 are the MXFP4 code values.
var ossE2M1 = [16]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}

// mxfp4 draws a [rows, cols] MXFP4 matrix: random codes (two a byte, the
// even element low) and E8M0 scales 2^-7..2^-3 (some gate and up values
// reach the clamp).
func (g *gptOSSWriter) mxfp4(rows, cols int) (codes, scales []byte, w []float64) {
	codes, scales = make([]byte, rows*cols/2), make([]byte, rows*cols/32)
	w = make([]float64, rows*cols)
	for i := range scales {
		scales[i] = byte(127 - 7 + g.rng.IntN(5))
	}
	for i := range codes {
		codes[i] = byte(g.rng.IntN(256))
	}
	for j := range w {
		w[j] = ossE2M1[codes[j/2]>>(4*(j%2))&15] * math.Ldexp(1, int(scales[j/32])-127)
	}
	return codes, scales, w
}

// experts draws layer prefix p's experts and stores them in the layout's
// names: MLX's experts.{gate,up,down}_proj.{weight,scales,bias}, the
// gpt-oss checkpoint's experts.{gate_up,down}_proj_{blocks,scales,bias}
// with gate and up rows interleaved, or transformers' bf16
// experts.gate_up_proj [E, H, 2I] (gate and up columns interleaved) and
// down_proj [E, I, H] with _bias.
func (g *gptOSSWriter) experts(p string, s gptOSSSpec, L *gptOSSLayer) {
	E, I, H := s.experts, s.inter, s.hidden
	var gc, gs, uc, us, dc, ds []byte
	for e := 0; e < E; e++ {
		c1, s1, w1 := g.mxfp4(I, H)
		c2, s2, w2 := g.mxfp4(I, H)
		c3, s3, w3 := g.mxfp4(H, I)
		gc, gs, uc, us, dc, ds = append(gc, c1...), append(gs, s1...), append(uc, c2...), append(us, s2...), append(dc, c3...), append(ds, s3...)
		L.gate, L.up, L.down = append(L.gate, w1), append(L.up, w2), append(L.down, w3)
	}
	u8 := func(shape []int, b []byte) fixture.Tensor { return fixture.Tensor{DType: "U8", Shape: shape, Data: b} }
	if g.layout == ossHFBF16 {
		g.bf16Experts(p, s, L)
		return
	}
	if g.layout == ossMLX {
		g.tensors[p+"gate_proj.weight"] = fixture.Tensor{DType: "U32", Shape: []int{E, I, H / 8}, Data: gc}
		g.tensors[p+"gate_proj.scales"] = u8([]int{E, I, H / 32}, gs)
		g.tensors[p+"up_proj.weight"] = fixture.Tensor{DType: "U32", Shape: []int{E, I, H / 8}, Data: uc}
		g.tensors[p+"up_proj.scales"] = u8([]int{E, I, H / 32}, us)
		g.tensors[p+"down_proj.weight"] = fixture.Tensor{DType: "U32", Shape: []int{E, H, I / 8}, Data: dc}
		g.tensors[p+"down_proj.scales"] = u8([]int{E, H, I / 32}, ds)
		gb := g.floats(p+"gate_proj.bias", []int{E, I}, 0, 0.1)
		ub := g.floats(p+"up_proj.bias", []int{E, I}, 0, 0.1)
		for e := 0; e < E; e++ {
			L.gateBias, L.upBias = append(L.gateBias, gb[e*I:(e+1)*I]), append(L.upBias, ub[e*I:(e+1)*I])
		}
		db := g.floats(p+"down_proj.bias", []int{E, H}, 0, 0.1)
		for e := 0; e < E; e++ {
			L.downBias = append(L.downBias, db[e*H:(e+1)*H])
		}
		return
	}
	// Interleave gate and up rows: row 2i is gate row i, 2i+1 up row i.
	rowB, rowS := H/2, H/32
	var guc, gus []byte
	for e := 0; e < E; e++ {
		for i := 0; i < I; i++ {
			r := e*I + i
			guc = append(guc, gc[r*rowB:(r+1)*rowB]...)
			guc = append(guc, uc[r*rowB:(r+1)*rowB]...)
			gus = append(gus, gs[r*rowS:(r+1)*rowS]...)
			gus = append(gus, us[r*rowS:(r+1)*rowS]...)
		}
	}
	g.tensors[p+"gate_up_proj_blocks"] = u8([]int{E, 2 * I, H / 32, 16}, guc)
	g.tensors[p+"gate_up_proj_scales"] = u8([]int{E, 2 * I, H / 32}, gus)
	g.tensors[p+"down_proj_blocks"] = u8([]int{E, H, I / 32, 16}, dc)
	g.tensors[p+"down_proj_scales"] = u8([]int{E, H, I / 32}, ds)
	gub := g.floats(p+"gate_up_proj_bias", []int{E, 2 * I}, 0, 0.1)
	for e := 0; e < E; e++ {
		gb, ub := make([]float64, I), make([]float64, I)
		for i := 0; i < I; i++ {
			gb[i], ub[i] = gub[e*2*I+2*i], gub[e*2*I+2*i+1]
		}
		L.gateBias, L.upBias = append(L.gateBias, gb), append(L.upBias, ub)
	}
	db := g.floats(p+"down_proj_bias", []int{E, H}, 0, 0.1)
	for e := 0; e < E; e++ {
		L.downBias = append(L.downBias, db[e*H:(e+1)*H])
	}
}

// bf16Experts stores L's experts (drawn as the MLX layout draws them, the
// MXFP4 values exact in bf16) and their biases in transformers'
// GptOssExperts layout: each expert's matrices transposed to [in, out],
// gate and up interleaved along the last dimension (gate = [..., ::2],
// up = [..., 1::2]).
func (g *gptOSSWriter) bf16Experts(p string, s gptOSSSpec, L *gptOSSLayer) {
	E, I, H := s.experts, s.inter, s.hidden
	gateUp, down := make([]uint16, E*H*2*I), make([]uint16, E*I*H)
	bits := func(v float64) uint16 {
		b, exact := ossBF16(v)
		if exact != v {
			panic(fmt.Sprintf("expert weight %v is not a bf16 value", v))
		}
		return b
	}
	for e := 0; e < E; e++ {
		for i := 0; i < I; i++ {
			for c := 0; c < H; c++ {
				gateUp[(e*H+c)*2*I+2*i] = bits(L.gate[e][i*H+c])
				gateUp[(e*H+c)*2*I+2*i+1] = bits(L.up[e][i*H+c])
				down[(e*I+i)*H+c] = bits(L.down[e][c*I+i])
			}
		}
	}
	g.tensors[p+"gate_up_proj"] = ossBF16Tensor([]int{E, H, 2 * I}, gateUp)
	g.tensors[p+"down_proj"] = ossBF16Tensor([]int{E, I, H}, down)
	// The biases as the MLX layout draws them (gate, up, down), stored
	// interleaved.
	gb := g.floats(p+"gate_proj.bias", []int{E, I}, 0, 0.1)
	ub := g.floats(p+"up_proj.bias", []int{E, I}, 0, 0.1)
	db := g.floats(p+"down_proj_bias", []int{E, H}, 0, 0.1)
	delete(g.tensors, p+"gate_proj.bias")
	delete(g.tensors, p+"up_proj.bias")
	gub := make([]uint16, E*2*I)
	for e := 0; e < E; e++ {
		for i := 0; i < I; i++ {
			gub[e*2*I+2*i], gub[e*2*I+2*i+1] = bits(gb[e*I+i]), bits(ub[e*I+i])
		}
		L.gateBias, L.upBias = append(L.gateBias, gb[e*I:(e+1)*I]), append(L.upBias, ub[e*I:(e+1)*I])
		L.downBias = append(L.downBias, db[e*H:(e+1)*H])
	}
	g.tensors[p+"gate_up_proj_bias"] = ossBF16Tensor([]int{E, 2 * I}, gub)
}

// newGptOSS draws a model and its checkpoint tensors.
func newGptOSS(s gptOSSSpec, seed uint64, layout gptOSSLayout) (*gptOSSRef, map[string]fixture.Tensor) {
	g := &gptOSSWriter{rng: rand.New(rand.NewPCG(seed, 77)), tensors: map[string]fixture.Tensor{}, layout: layout}
	m := &gptOSSRef{s: s}
	m.invFreq, m.attentionScale = ossYaRNInvFreq(s)
	h, hd := s.hidden, s.headDim
	m.embed = g.dense("model.embed_tokens", s.vocab, h, 1)
	for l := 0; l < s.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		var L gptOSSLayer
		L.inNorm = g.floats(p+"input_layernorm.weight", []int{h}, 1, 0.1)
		L.postNorm = g.floats(p+"post_attention_layernorm.weight", []int{h}, 1, 0.1)
		a := p + "self_attn."
		L.wq = g.dense(a+"q_proj", s.heads*hd, h, 0.15)
		L.bq = g.floats(a+"q_proj.bias", []int{s.heads * hd}, 0, 0.1)
		L.wk = g.dense(a+"k_proj", s.kvHeads*hd, h, 0.15)
		L.bk = g.floats(a+"k_proj.bias", []int{s.kvHeads * hd}, 0, 0.1)
		L.wv = g.dense(a+"v_proj", s.kvHeads*hd, h, 0.15)
		L.bv = g.floats(a+"v_proj.bias", []int{s.kvHeads * hd}, 0, 0.1)
		L.wo = g.dense(a+"o_proj", h, s.heads*hd, 0.15)
		L.bo = g.floats(a+"o_proj.bias", []int{h}, 0, 0.1)
		L.sinks = g.floats(a+"sinks", []int{s.heads}, 0, 1)
		L.wr = g.dense(p+"mlp.router", s.experts, h, 0.3)
		L.br = g.floats(p+"mlp.router.bias", []int{s.experts}, 0, 0.2)
		g.experts(p+"mlp.experts.", s, &L)
		m.layers = append(m.layers, L)
	}
	m.norm = g.floats("model.norm.weight", []int{h}, 1, 0.1)
	m.lmHead = g.dense("lm_head", s.vocab, h, 0.3)
	return m, g.tensors
}

// gptOSSConfig is config.json for the spec in transformers' field names.
func gptOSSConfig(s gptOSSSpec, layout gptOSSLayout) map[string]any {
	c := map[string]any{
		"architectures": []string{"GptOssForCausalLM"}, "model_type": "gpt_oss",
		"vocab_size": s.vocab, "hidden_size": s.hidden, "intermediate_size": s.inter,
		"num_hidden_layers": s.layers, "num_attention_heads": s.heads, "num_key_value_heads": s.kvHeads,
		"head_dim": s.headDim, "num_local_experts": s.experts, "num_experts_per_tok": s.topK,
		"experts_per_token": s.topK, "sliding_window": s.window, "layer_types": s.layerTypes,
		"rms_norm_eps": s.eps, "rope_theta": s.theta, "max_position_embeddings": 2048,
		"initial_context_length": s.origMax, "attention_bias": true, "swiglu_limit": 7.0,
		"tie_word_embeddings": false, "hidden_act": "silu", "router_aux_loss_coef": 0.9,
		"output_router_logits": false, "use_cache": true, "torch_dtype": "bfloat16",
		"rope_scaling": map[string]any{"rope_type": "yarn", "factor": s.yarnFactor, "beta_fast": s.betaFast,
			"beta_slow": s.betaSlow, "truncate": false, "original_max_position_embeddings": s.origMax},
	}
	switch layout {
	case ossHFBF16:
		return c
	case ossHFMXFP4:
		c["quantization_config"] = map[string]any{"quant_method": "mxfp4",
			"modules_to_not_convert": []string{"model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"}}
		return c
	}
	q := map[string]any{"group_size": 64, "bits": 8, "mode": "affine"}
	for l := 0; l < s.layers; l++ {
		for _, name := range []string{"gate_proj", "up_proj", "down_proj"} {
			q[fmt.Sprintf("model.layers.%d.mlp.experts.%s", l, name)] = map[string]any{"group_size": 32, "bits": 4, "mode": "mxfp4"}
		}
	}
	c["quantization"], c["quantization_config"] = q, q
	return c
}

// gptOSSReference computes reference.json's contents for m over the
// prompts (and greedy prompt) of an existing fixture.
func gptOSSReference(m *gptOSSRef, src *fixture.Reference, name, layout string) map[string]any {
	trace := func(ids []int32) *refTrace {
		tr := m.forward(ids)
		routes := map[string][][]int32{}
		for l, r := range tr.routes {
			routes[fmt.Sprintf("model.layers.%d.mlp.router", l)] = r
		}
		return &refTrace{logits: tr.logits, embedLast: tr.embedLast, layerLast: tr.layerLast, routes: routes}
	}
	prompts, _ := refPrompts(src.Prompts, func(ids []int32) (*refTrace, error) { return trace(ids), nil })
	greedy, _ := refGreedy(src.Greedy.PromptIDs, func(ids []int32) ([]float64, error) {
		tr := m.forward(ids)
		return tr.logits[len(ids)-1], nil
	})
	return map[string]any{
		"source":  "float64 Go transcription of transformers src/transformers/models/gpt_oss/modeling_gpt_oss.py (not transformers itself)",
		"fixture": name, "family": "gpt_oss", "layout": layout, "dtype": "float64",
		"generator": "model/gpt_oss_ref_test.go TestRegenGptOSS",
		"prompts":   prompts,
		"greedy":    greedy,
	}
}

// TestRegenGptOSS writes testdata/fixtures/gpt_oss-{mxfp4-q8,hf-mxfp4,hf-bf16}.
func TestRegenGptOSS(t *testing.T) {
	if os.Getenv("MLXMOE_REGEN") != "1" {
		t.Skip("set MLXMOE_REGEN=1 to regenerate the gpt_oss fixtures")
	}
	srcRel := "fixtures/qwen3_moe-4bit" // same 512-token tokenizer
	src := fixture.LoadReference(t, fixture.Dir(t, srcRel))
	for _, f := range gptOSSFixtures {
		dir := filepath.Join(fixture.Root(), "fixtures", f.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		m, tensors := newGptOSS(gptOSSTiny, f.seed, f.store)
		st := filepath.Join(t.TempDir(), "model.safetensors")
		if err := fixture.WriteSafetensors(st, tensors); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(st)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := json.MarshalIndent(gptOSSConfig(gptOSSTiny, f.store), "", "  ")
		ref, _ := json.Marshal(gptOSSReference(m, src, f.name, f.layout))
		tok, err := os.ReadFile(filepath.Join(fixture.Root(), srcRel, "tokenizer.json.gz"))
		if err != nil {
			t.Fatal(err)
		}
		tokCfg, err := os.ReadFile(filepath.Join(fixture.Root(), srcRel, "tokenizer_config.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644),
			writeGzip(filepath.Join(dir, "model.safetensors.gz"), raw),
			writeGzip(filepath.Join(dir, "reference.json.gz"), ref),
			os.WriteFile(filepath.Join(dir, "tokenizer.json.gz"), tok, 0o644),
			os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tokCfg, 0o644),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestGptOSSFixtureExercises checks that the committed references are what
// the generator makes (so the fixtures are current) and that each gpt-oss
// feature moves their logits: without the sinks, the sliding window, the
// clamp, or with YaRN's truncated correction range the reference would be
// a different one.
func TestGptOSSFixtureExercises(t *testing.T) {
	for _, f := range gptOSSFixtures {
		ref := fixture.LoadReference(t, fixture.Dir(t, "fixtures/"+f.name))
		p := ref.Prompts[0]
		lastOf := func(m *gptOSSRef) []float32 {
			tr := m.forward(p.IDs)
			return refF32(tr.logits[len(p.IDs)-1])
		}
		m, _ := newGptOSS(gptOSSTiny, f.seed, f.store)
		if d := maxAbsDiff(lastOf(m), p.LastLogits); d > 1e-6 {
			t.Fatalf("%s: the generator's model differs from the fixture by %g: regenerate it", f.name, d)
		}
		variants := map[string]func(m *gptOSSRef){
			"no sinks":  func(m *gptOSSRef) { m.noSinks = true },
			"no window": func(m *gptOSSRef) { m.s.window = 1 << 20 },
			"no clamp":  func(m *gptOSSRef) { m.limit = math.Inf(1) },
			"truncated yarn": func(m *gptOSSRef) {
				// floor and ceil of the correction range (0, 1.56): (0, 2)
				s := m.s
				for i := range m.invFreq {
					pos := math.Pow(s.theta, float64(2*i)/float64(s.headDim))
					ramp := math.Min(math.Max(float64(i)/2, 0), 1)
					m.invFreq[i] = 1/(s.yarnFactor*pos)*ramp + 1/pos*(1-ramp)
				}
			},
		}
		for name, change := range variants {
			v, _ := newGptOSS(gptOSSTiny, f.seed, f.store)
			change(v)
			if d := maxAbsDiff(lastOf(v), p.LastLogits); d < 1e-2 {
				t.Errorf("%s: %s moves the last logits by only %g", f.name, name, d)
			}
		}
	}
}
