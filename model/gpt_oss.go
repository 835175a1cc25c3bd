package model

import (
	"fmt"
	"slices"

	"github.com/mlx-moe/mlx-moe/graph"
)

// gpt-oss (OpenAI gpt-oss-20b/120b): attention with biases, a learned
// per-head sink logit in the softmax and, on the layers layer_types calls
// "sliding_attention", a window of sliding_window positions; YaRN rope
// (rotate-half, "truncate": false); every layer a MoE whose router has a
// bias, whose top-k logits are softmaxed, and whose experts have biases and
// a clamped SwiGLU (alpha 1.702, limit 7, up+1).
//
// Layouts: OpenAI's/Hugging Face's checkpoint keeps the experts in MXFP4 as
// mlp.experts.gate_up_proj_blocks [E, 2I, H/32, 16] (uint8, gate and up
// rows interleaved) with _scales [E, 2I, H/32] (E8M0) and _bias [E, 2I],
// and down_proj_* likewise; transformers' bf16 checkpoints keep
// mlp.experts.gate_up_proj [E, H, 2I] (stored [in, out], gate and up
// columns interleaved) with gate_up_proj_bias [E, 2I], and down_proj [E, I,
// H] with down_proj_bias; mlx-lm splits gate_up into
// mlp.experts.{gate,up,down}_proj.{weight,scales,bias} in any MLX
// quantization mode (mxfp4 for mlx-community's checkpoints).
func init() { register("gpt_oss", loadGptOSS) }

// gptOSS's expert activation constants, fixed in transformers' GptOssExperts
// (and mlx-lm's swiglu).
const (
	gptOSSAlpha = 1.702
	gptOSSLimit = 7.0
)

func loadGptOSS(w *weights) *Model {
	c := w.cfg
	if c.SwiGLULimit != nil && *c.SwiGLULimit != gptOSSLimit {
		w.fail("%s: swiglu_limit %v is not supported (transformers' gpt-oss clamps at %v)", c.Path, *c.SwiGLULimit, gptOSSLimit)
		return nil
	}
	if c.NumExperts <= 0 || c.NumExpertsPerTok <= 0 || c.NumExpertsPerTok > c.NumExperts || c.IntermediateSize <= 0 {
		w.fail("%s: gpt_oss needs num_local_experts (%d), num_experts_per_tok (%d) between 1 and it, and intermediate_size (%d)",
			c.Path, c.NumExperts, c.NumExpertsPerTok, c.IntermediateSize)
		return nil
	}
	types := c.LayerTypes
	if len(types) == 0 {
		for l := 0; l < c.NumLayers; l++ {
			types = append(types, []string{"sliding_attention", "full_attention"}[l%2])
		}
	}
	if len(types) != c.NumLayers {
		w.fail("%s: layer_types has %d entries for %d layers", c.Path, len(types), c.NumLayers)
		return nil
	}
	return loadStack(w, func(l int, lp string) (Mixer, FFN) {
		window := 0
		switch types[l] {
		case "full_attention":
		case "sliding_attention":
			if window = c.slidingWindow(); window <= 0 {
				w.fail("%s: layer %d is sliding_attention but sliding_window is %d", c.Path, l, window)
			}
		default:
			w.fail("%s: layer_types[%d] %q is not supported (sliding_attention or full_attention)", c.Path, l, types[l])
		}
		return loadSinkAttention(w, lp+"self_attn.", window), loadGptOSSMoE(w, l, lp+"mlp.")
	})
}

// SinkAttention is gpt-oss's attention: Attention's projections (with
// biases) and rope, an o_proj bias, and attention with sinks over the KV
// cache (float32, or half/8/4-bit on executors that store those). Window >
// 0 limits each token to the last Window positions.
type SinkAttention struct {
	*Attention
	OBias  []float32
	Sinks  []float32
	Window int
}

// forwardSegments shadows the embedded Attention's batched form, which
// knows nothing of sinks and windows: gpt-oss's attention runs once per
// segment of a batched pass.
func (a *SinkAttention) forwardSegments(r *run, out, x *graph.Tensor) error {
	return r.mixEach(a, out, x)
}

func loadSinkAttention(w *weights, p string, window int) *SinkAttention {
	a := loadAttention(w, p, attentionOptions{bias: w.has(p + "q_proj.bias")})
	s := &SinkAttention{Attention: a, Window: window, Sinks: w.vector(p+"sinks", a.Heads)}
	s.OBias = w.optVector(p+"o_proj.bias", w.cfg.HiddenSize)
	return s
}

// The cache (newState, StateBytes) is the embedded Attention's, in any
// format.

func (a *SinkAttention) forward(r *run, out, x *graph.Tensor, st MixerState) error {
	e, n := r.E, r.n
	cache := st.(*kvCache)
	q, _, att := a.scratch(&r.scratch)
	// 1. Projections; in float32 the new keys and values go straight into
	// the cache, else into scratch rows stored after the rotary embedding.
	k, v := a.kvScratch(&r.scratch)
	if cache.KQ == nil {
		k = cache.kNew.SetView(cache.K, r.pos0, n, 0, cache.K.Cols)
		v = cache.vNew.SetView(cache.V, r.pos0, n, 0, cache.V.Cols)
	}
	e.MatMul(q, x, n, a.Q, a.QBias)
	e.MatMul(k, x, n, a.K, a.KBias)
	e.MatMul(v, x, n, a.V, a.VBias)
	// 2. Rotary embedding of q and the new keys.
	e.Rope(q, r.pos, a.Heads, a.HeadDim, a.Rope)
	e.Rope(k, r.pos, a.KVHeads, a.HeadDim, a.Rope)
	// 3. Attention with sinks (and the window), o_proj with its bias.
	if cache.KQ != nil {
		sa, ok := e.(graph.SinkAttentionKV)
		if !ok {
			return fmt.Errorf("executor %s has no attention with sinks (gpt-oss) over %v KV caches", e.Name(), cache.KQ.Format)
		}
		ke := e.(graph.KVExecutor)
		ke.StoreKV(cache.KQ, r.pos0, k, n)
		ke.StoreKV(cache.VQ, r.pos0, v, n)
		sa.AttentionSinksKV(att, q, cache.KQ, 0, cache.VQ, 0, n, r.pos0, a.Heads, a.KVHeads, a.HeadDim, a.HeadDim, a.Scale, a.Sinks, a.Window)
	} else {
		sa, ok := e.(graph.SinkAttention)
		if !ok {
			return fmt.Errorf("executor %s has no attention with sinks (gpt-oss)", e.Name())
		}
		sa.AttentionSinks(att, q, cache.K, cache.V, n, r.pos0, a.Heads, a.KVHeads, a.HeadDim, a.HeadDim, a.Scale, a.Sinks, a.Window)
	}
	e.MatMul(out, att, n, a.O, a.OBias)
	return nil
}

// loadGptOSSMoE reads layer l's router (with its bias) and experts.
func loadGptOSSMoE(w *weights, l int, p string) *MoE {
	c := w.cfg
	e, inter, h := c.NumExperts, c.IntermediateSize, c.HiddenSize
	m := &MoE{Layer: l,
		Router:     w.linear(p+"router", e, h),
		RouterBias: w.vector(p+"router.bias", e),
		// Softmax over the top-k logits: the same weights as the top-k of
		// a softmax over all of them, renormalised.
		Routing: softmaxRouting(c, true),
		Biased:  &graph.BiasedExperts{Alpha: gptOSSAlpha, Limit: gptOSSLimit},
	}
	src := &ExpertSource{Layer: l, Count: e}
	x := p + "experts."
	switch {
	case w.has(x + "gate_up_proj_blocks"):
		w.gptOSSBlocks(src, x+"gate_up_proj", 0, 2*inter, h)
		w.gptOSSBlocks(src, x+"down_proj", 2, h, inter)
		m.Biased.Interleaved = true
		m.Biased.GateBias = perExpert(w.vector(x+"gate_up_proj_bias", e*2*inter), e)
	case w.has(x + "gate_proj.weight"):
		w.stackedExperts(src, x, [3][2]int{{inter, h}, {inter, h}, {h, inter}})
		m.Biased.GateBias = perExpert(w.vector(x+"gate_proj.bias", e*inter), e)
		m.Biased.UpBias = perExpert(w.vector(x+"up_proj.bias", e*inter), e)
	case w.has(x + "gate_up_proj"):
		w.gptOSSDense(src, x+"gate_up_proj", 0, h, 2*inter)
		w.gptOSSDense(src, x+"down_proj", 2, inter, h)
		m.Biased.Interleaved, m.Biased.Transposed = true, true
		m.Biased.GateBias = perExpert(w.vector(x+"gate_up_proj_bias", e*2*inter), e)
	default:
		w.fail("%s: no gpt-oss experts at %s (gate_up_proj_blocks, gate_up_proj or gate_proj.weight)", w.ix.Dir, x)
		return m
	}
	if m.Biased.Interleaved {
		m.Biased.DownBias = perExpert(w.vector(x+"down_proj_bias", e*h), e)
	} else {
		m.Biased.DownBias = perExpert(w.vector(x+"down_proj.bias", e*h), e)
	}
	switch {
	case w.err != nil:
	case src.unpageable != "":
		w.fail("%s", src.unpageable)
	case w.lazy:
		m.Experts = src
	default:
		m.Experts = w.residentExperts(src)
	}
	return m
}

// gptOSSBlocks describes one of gpt-oss's MXFP4 expert tensors
// (<name>_blocks [E, rows, cols/32, 16] uint8, <name>_scales [E, rows,
// cols/32] uint8) as matrix i of src.
func (w *weights) gptOSSBlocks(src *ExpertSource, name string, i, rows, cols int) {
	n := src.Count
	bt, st := w.tensor(name+"_blocks"), w.tensor(name+"_scales")
	if w.err != nil {
		return
	}
	if bt.DType != U8 || !slices.Equal(bt.Shape, []int{n, rows, cols / 32, 16}) || cols%32 != 0 {
		w.fail("tensor %s is %s%v, expected U8 [%d %d %d 16] (MXFP4, sizes from %s)", bt.Name, bt.DType, bt.Shape, n, rows, cols/32, w.cfg.Path)
		return
	}
	if st.DType != U8 || !slices.Equal(st.Shape, []int{n, rows, cols / 32}) {
		w.fail("tensor %s is %s%v, expected U8 [%d %d %d] (E8M0 scales)", st.Name, st.DType, st.Shape, n, rows, cols/32)
		return
	}
	part := func(t *TensorInfo) expertPart {
		return expertPart{stacked: t, stride: t.Length / int64(n), length: t.Length / int64(n)}
	}
	src.mats[i] = expertMatrix{rows: rows, cols: cols, dtype: U8,
		quant: QuantParams{Bits: 4, GroupSize: 32, Mode: "mxfp4"}, parts: []expertPart{part(bt), part(st)}}
}

// gptOSSDense describes one of transformers' bf16 gpt-oss expert tensors
// (<name> [E, in, out], BF16 or F32, each expert one contiguous slice) as
// matrix i of src, stored transposed (BiasedExperts.Transposed).
func (w *weights) gptOSSDense(src *ExpertSource, name string, i, in, out int) {
	t := w.tensor(name)
	if w.err != nil {
		return
	}
	if (t.DType != BF16 && t.DType != F32) || !slices.Equal(t.Shape, []int{src.Count, in, out}) {
		w.fail("tensor %s is %s%v, expected BF16 [%d %d %d] (experts [E, in, out], sizes from %s)", t.Name, t.DType, t.Shape, src.Count, in, out, w.cfg.Path)
		return
	}
	n := int64(src.Count)
	src.mats[i] = expertMatrix{rows: in, cols: out, dtype: t.DType,
		parts: []expertPart{{stacked: t, stride: t.Length / n, length: t.Length / n}}}
}

// perExpert cuts a [n, k] tensor's values into n rows.
func perExpert(v []float32, n int) [][]float32 {
	if v == nil {
		return nil
	}
	k := len(v) / n
	out := make([][]float32, n)
	for e := range out {
		out[e] = v[e*k : (e+1)*k]
	}
	return out
}
