package model

import (
	"encoding/json"
	"os"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// MLA is multi-head latent attention (DeepSeek-V3, GLM-4.7-Flash). Keys and
// values of all heads are compressed into one latent vector per position
// (kv_a_proj_with_mqa, kv_a_layernorm) plus one small rotary key shared by
// the heads; the cache keeps only those, [latent | roped key] per row.
//
// Attention runs in the absorbed form: rather than expanding every cached
// latent into per-head keys and values with kv_b_proj, each head's query is
// mapped into latent space by that head's key block of kv_b_proj
// (QToLatent), attends over the cached rows directly (score = q_latent ·
// latent + q_rope · k_rope), and the latent-space result is mapped to the
// head's values by its value block (LatentToV). This is the same function
// as transformers' expanded form, for prefill and decode alike.
type MLA struct {
	Heads, QLoraRank, KVLoraRank int
	NopeDim, RopeDim, VDim       int

	// QA, QABias, QANorm: q_a_proj and q_a_layernorm, nil when q_lora_rank is null
	// and the query comes straight from q_proj.
	QA     *kernels.Matrix
	QABias []float32
	QANorm []float32
	// QNope and QRope are the rows of q_b_proj (or q_proj) that give each
	// head's non-rotary and rotary query parts, [Heads*NopeDim, in] and
	// [Heads*RopeDim, in].
	QNope, QRope *kernels.Matrix
	// KVA is kv_a_proj_with_mqa: [KVLoraRank+RopeDim, hidden].
	KVA     *kernels.Matrix
	KVABias []float32
	KVANorm []float32
	// QToLatent[h] is head h's key block of kv_b_proj transposed,
	// [KVLoraRank, NopeDim] (MLX's embed_q); LatentToV[h] its value block,
	// [VDim, KVLoraRank] (MLX's unembed_out).
	QToLatent, LatentToV []*kernels.Matrix
	O                    *kernels.Matrix
	OBias                []float32

	Rope  *kernels.RopeParams
	Eps   float32 // of q_a_layernorm and kv_a_layernorm
	Scale float32
}

// mlaNormEps is the epsilon of q_a_layernorm and kv_a_layernorm:
// transformers builds both norms with its default 1e-6 for DeepSeek-V3 and
// GLM-4.7-Flash alike, whatever rms_norm_eps says (mlx-lm's glm4_moe_lite
// uses rms_norm_eps there; the reference outputs follow transformers).
const mlaNormEps = 1e-6

// latentCache is an MLA layer's cache: per position the normalised latent
// followed by the rotated shared key.
type latentCache struct{ KV *graph.Tensor }

// PerPosition: like a KV cache, a latent cache can be cut back to any prefix.
func (c *latentCache) PerPosition() bool { return true }

func (c *latentCache) CopyFrom(o MixerState, e graph.Executor, positions int) {
	src := o.(*latentCache)
	e.CopyCols(c.KV, 0, 0, src.KV, 0, 0, positions, src.KV.Cols)
}

func (a *MLA) newState(e graph.Executor, maxLen int) MixerState {
	return &latentCache{KV: e.NewTensor(maxLen, a.KVLoraRank+a.RopeDim)}
}

func (a *MLA) forward(r *run, out, x *graph.Tensor, st MixerState) error {
	e, n := r.E, r.n
	cache := st.(*latentCache)
	H, L, dn, dr, dv := a.Heads, a.KVLoraRank, a.NopeDim, a.RopeDim, a.VDim

	// 1. Query: q_a_proj -> q_a_layernorm -> q_b_proj, as its non-rotary
	// and (rotated) rotary parts.
	qin := x
	if a.QA != nil {
		qin = r.tensor("mla.qa", a.QLoraRank)
		e.MatMul(qin, x, n, a.QA, a.QABias)
		e.RMSNorm(qin, qin, n, a.QLoraRank, a.QANorm, a.Eps)
	}
	qNope := r.tensor("mla.qnope", H*dn)
	e.MatMul(qNope, qin, n, a.QNope, nil)
	qRope := r.tensor("mla.qrope", H*dr)
	e.MatMul(qRope, qin, n, a.QRope, nil)
	e.Rope(qRope, r.pos, H, dr, a.Rope)

	// 2. The compressed KV of the new positions: the normalised latent and
	// the rotated shared key, appended to the cache.
	kv := r.tensor("mla.kv", L+dr)
	e.MatMul(kv, x, n, a.KVA, a.KVABias)
	latent := r.tensor("mla.latent", L)
	e.CopyCols(latent, 0, 0, kv, 0, 0, n, L)
	e.RMSNorm(latent, latent, n, L, a.KVANorm, a.Eps)
	kRope := r.tensor("mla.krope", dr)
	e.CopyCols(kRope, 0, 0, kv, 0, L, n, dr)
	e.Rope(kRope, r.pos, 1, dr, a.Rope)
	e.CopyCols(cache.KV, r.pos0, 0, latent, 0, 0, n, L)
	e.CopyCols(cache.KV, r.pos0, L, kRope, 0, 0, n, dr)

	// 3. Per head, the absorbed query [q_nope·W_k | q_rope] against the
	// cached rows [latent | k_rope]; the values are the latents themselves.
	q := r.tensor("mla.q", H*(L+dr))
	qHead := r.tensor("mla.qhead", dn)
	qLatent := r.tensor("mla.qlatent", L)
	for h := 0; h < H; h++ {
		e.CopyCols(qHead, 0, 0, qNope, 0, h*dn, n, dn)
		e.MatMul(qLatent, qHead, n, a.QToLatent[h], nil)
		e.CopyCols(q, 0, h*(L+dr), qLatent, 0, 0, n, L)
		e.CopyCols(q, 0, h*(L+dr)+L, qRope, 0, h*dr, n, dr)
	}
	att := r.tensor("mla.att", H*L)
	e.Attention(att, q, cache.KV, cache.KV, n, r.pos0, H, 1, L+dr, L, a.Scale)

	// 4. Per head from latent space to values, then o_proj.
	oHead := r.tensor("mla.ohead", L)
	vHead := r.tensor("mla.vhead", dv)
	v := r.tensor("mla.v", H*dv)
	for h := 0; h < H; h++ {
		e.CopyCols(oHead, 0, 0, att, 0, h*L, n, L)
		e.MatMul(vHead, oHead, n, a.LatentToV[h], nil)
		e.CopyCols(v, 0, h*dv, vHead, 0, 0, n, dv)
	}
	e.MatMul(out, v, n, a.O, a.OBias)
	return nil
}

// mlaOptions are the config.json keys of the MLA families that Config does
// not hold. A missing rope_interleave means true, the default of both
// families in transformers (and mlx-lm always interleaves).
type mlaOptions struct {
	RopeInterleave *bool    `json:"rope_interleave"`
	MLPLayerTypes  []string `json:"mlp_layer_types"`
}

func readMLAOptions(w *weights) mlaOptions {
	var o mlaOptions
	if w.cfg.Path == "" {
		return o
	}
	data, err := os.ReadFile(w.cfg.Path)
	if err != nil {
		w.fail("reading model config: %v", err)
		return o
	}
	if err := json.Unmarshal(data, &o); err != nil {
		w.fail("%s: rope_interleave or mlp_layer_types: %v", w.cfg.Path, err)
	}
	return o
}

// loadMLA reads the attention of one layer (prefix p, "model.layers.N.self_attn.")
// in any of the three layouts: Hugging Face (kv_b_proj, dense or FP8),
// older MLX conversions (kv_b_proj quantized) and newer MLX conversions
// (kv_b_proj already split into embed_q and unembed_out, quantized along
// their own last axes).
func loadMLA(w *weights, p string, opts mlaOptions) *MLA {
	c := w.cfg
	a := &MLA{Heads: c.NumHeads, QLoraRank: c.QLoraRank, KVLoraRank: c.KVLoraRank,
		NopeDim: c.QKNopeHeadDim, RopeDim: c.QKRopeHeadDim, VDim: c.VHeadDim, Eps: mlaNormEps}
	H, L, dn, dr, dv := a.Heads, a.KVLoraRank, a.NopeDim, a.RopeDim, a.VDim
	if L <= 0 || dn <= 0 || dr <= 0 || dv <= 0 || dr%2 != 0 {
		w.fail("%s: latent attention needs positive kv_lora_rank, qk_nope_head_dim, v_head_dim and an even qk_rope_head_dim; got %d, %d, %d, %d",
			c.Path, L, dn, dv, dr)
		return nil
	}
	hidden := c.HiddenSize
	var q *kernels.Matrix
	if a.QLoraRank > 0 {
		a.QA = w.linear(p+"q_a_proj", a.QLoraRank, hidden)
		a.QANorm = w.vector(p+"q_a_layernorm.weight", a.QLoraRank)
		q = w.linear(p+"q_b_proj", H*(dn+dr), a.QLoraRank)
	} else {
		q = w.linear(p+"q_proj", H*(dn+dr), hidden)
	}
	a.KVA = w.linear(p+"kv_a_proj_with_mqa", L+dr, hidden)
	a.KVANorm = w.vector(p+"kv_a_layernorm.weight", L)
	a.O = w.linear(p+"o_proj", hidden, H*dv)
	if c.AttentionBias {
		if a.QA != nil {
			a.QABias = w.vector(p+"q_a_proj.bias", a.QLoraRank)
		}
		a.KVABias = w.vector(p+"kv_a_proj_with_mqa.bias", L+dr)
		a.OBias = w.vector(p+"o_proj.bias", hidden)
	}
	if w.has(p + "embed_q.weight") {
		a.QToLatent = w.stack(p+"embed_q", H, L, dn)
		a.LatentToV = w.stack(p+"unembed_out", H, dv, L)
	} else {
		a.QToLatent, a.LatentToV = splitKVB(w, p+"kv_b_proj", H, L, dn, dv)
	}
	if w.err != nil {
		return nil
	}
	// Each head's query rows are [nope | rope] in q_b_proj.
	var nopeRows, ropeRows []int
	for h := 0; h < H; h++ {
		for i := 0; i < dn+dr; i++ {
			if i < dn {
				nopeRows = append(nopeRows, h*(dn+dr)+i)
			} else {
				ropeRows = append(ropeRows, h*(dn+dr)+i)
			}
		}
	}
	a.QNope, a.QRope = selectRows(q, nopeRows), selectRows(q, ropeRows)

	interleave := opts.RopeInterleave == nil || *opts.RopeInterleave
	a.Rope = ropeFor(w, dr, interleave)
	a.Scale = kernels.AttentionScale(dn + dr)
	// With YaRN, transformers also scales the logits by mscale(factor,
	// mscale_all_dim)², which DeepSeek-V3's real config relies on.
	if rs := c.RopeScaling; rs != nil && rs.Kind() != "" && rs.Kind() != "default" && rs.MScaleAllDim != 0 {
		m := float32(kernels.YaRNMScale(rs.Factor, rs.MScaleAllDim))
		a.Scale *= m * m
	}
	return a
}

// splitKVB turns kv_b_proj ([heads*(dn+dv), L]: per head dn key rows, then
// dv value rows) into per-head QToLatent (the key block transposed) and
// LatentToV (the value block) matrices. A quantized kv_b_proj (older MLX
// conversions) gets its transposed key blocks quantized again with the same
// bits and group size, from bf16-rounded values, as mlx-lm does when it
// loads such a file; they stay dense when dn is not a multiple of the group
// size (mlx-lm cannot load those).
func splitKVB(w *weights, module string, heads, L, dn, dv int) (qToLatent, latentToV []*kernels.Matrix) {
	kvb := w.linear(module, heads*(dn+dv), L)
	if kvb == nil {
		return nil, nil
	}
	row := make([]float32, L)
	for h := 0; h < heads; h++ {
		base := h * (dn + dv)
		kT := make([]float32, L*dn)
		for i := 0; i < dn; i++ {
			kvb.Row(base+i, row)
			for c, v := range row {
				kT[c*dn+i] = v
			}
		}
		k := &kernels.Matrix{Rows: L, Cols: dn, F32: kT}
		if q := kvb.Q; q != nil && dn%q.GroupSize == 0 {
			// mlx-lm dequantizes to bf16 before quantizing again.
			for i, v := range kT {
				kT[i] = kernels.BF16ToF32(kernels.F32ToBF16(v))
			}
			var err error
			if k, err = kernels.Quantize(kT, L, dn, q.Bits, q.GroupSize); err != nil {
				w.fail("%s: re-quantizing the key block of head %d: %v", module, h, err)
				return nil, nil
			}
		}
		vRows := make([]int, dv)
		for i := range vRows {
			vRows[i] = base + dn + i
		}
		qToLatent = append(qToLatent, k)
		latentToV = append(latentToV, selectRows(kvb, vRows))
	}
	return qToLatent, latentToV
}

// selectRows returns a matrix made of the given rows of m, in that order, in
// m's storage format.
func selectRows(m *kernels.Matrix, rows []int) *kernels.Matrix {
	out := &kernels.Matrix{Rows: len(rows), Cols: m.Cols}
	switch {
	case m.F32 != nil:
		out.F32 = make([]float32, 0, len(rows)*m.Cols)
		for _, r := range rows {
			out.F32 = append(out.F32, m.F32[r*m.Cols:(r+1)*m.Cols]...)
		}
	case m.BF16 != nil:
		out.BF16 = make([]uint16, 0, len(rows)*m.Cols)
		for _, r := range rows {
			out.BF16 = append(out.BF16, m.BF16[r*m.Cols:(r+1)*m.Cols]...)
		}
	default:
		q := m.Q
		words, groups := m.Cols*q.Bits/32, m.Cols/q.GroupSize
		oq := &kernels.Quant{Bits: q.Bits, GroupSize: q.GroupSize, F16Scales: q.F16Scales}
		for _, r := range rows {
			oq.W = append(oq.W, q.W[r*words:(r+1)*words]...)
			oq.Scales = append(oq.Scales, q.Scales[r*groups:(r+1)*groups]...)
			oq.Biases = append(oq.Biases, q.Biases[r*groups:(r+1)*groups]...)
		}
		out.Q = oq
	}
	return out
}
