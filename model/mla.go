package model

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// MLA is multi-head latent attention (DeepSeek-V3, GLM-4.7-Flash). Keys and
// values of all heads are compressed into one latent vector per position
// (kv_a_proj_with_mqa, kv_a_layernorm) plus one small rotary key shared by
// the heads; the cache keeps only those, [roped key | latent] per row.
//
// Attention runs in the absorbed form: rather than expanding every cached
// latent into per-head keys and values with kv_b_proj, each head's query is
// mapped into latent space by that head's key block of kv_b_proj
// (QToLatent), attends over the cached rows directly (score = q_rope ·
// k_rope + q_latent · latent), and the latent-space result is mapped to the
// head's values by its value block (LatentToV). This is the same function
// as transformers' expanded form, for prefill and decode alike.
//
// Each head's query is [rope(RopeDim) | latent(KVLoraRank)], the layout of
// a cache row, so the rotary part of queries and cached keys is a partial
// rotary embedding over heads of RopeDim+KVLoraRank values, and the
// per-head projections (MatMulHeads) write straight into their columns.
type MLA struct {
	Heads, QLoraRank, KVLoraRank int
	NopeDim, RopeDim, VDim       int

	// QA, QABias, QANorm: q_a_proj and q_a_layernorm, nil when q_lora_rank is null
	// and the query comes straight from q_proj.
	QA     *kernels.Matrix
	QABias []float32
	QANorm []float32
	// QNope gives every head's non-rotary query part, [Heads*NopeDim, in];
	// QRope[h] head h's rotary part, [RopeDim, in] (rows of q_b_proj or
	// q_proj).
	QNope *kernels.Matrix
	QRope []*kernels.Matrix
	// KVA is kv_a_proj_with_mqa with its rows regrouped as a cache row:
	// [RopeDim+KVLoraRank, hidden], the rotary key first.
	KVA     *kernels.Matrix
	KVABias []float32
	KVANorm []float32
	// QToLatent[h] is head h's key block of kv_b_proj transposed,
	// [KVLoraRank, NopeDim] (MLX's embed_q); LatentToV[h] its value block,
	// [VDim, KVLoraRank] (MLX's unembed_out).
	QToLatent, LatentToV []*kernels.Matrix
	O                    *kernels.Matrix
	OBias                []float32

	// Rope rotates the first RopeDim values of heads of RopeDim+KVLoraRank.
	Rope  *kernels.RopeParams
	Eps   float32 // of q_a_layernorm and kv_a_layernorm
	Scale float32
}

// mlaNormEps is the epsilon of q_a_layernorm and kv_a_layernorm:
// transformers builds both norms with its default 1e-6 for DeepSeek-V3 and
// GLM-4.7-Flash alike, whatever rms_norm_eps says (mlx-lm's glm4_moe_lite
// uses rms_norm_eps there; the reference outputs follow transformers).
const mlaNormEps = 1e-6

// latentCache is an MLA layer's cache: per position the rotated shared key
// followed by the normalised latent. Values is the latent columns of every
// row (a view); rows and latent are re-aimed at each pass's new positions.
// At half precision or quantized the rows are KQ instead (the values are
// its latent columns) and each pass's rows are made in scratch first.
type latentCache struct {
	KV           *graph.Tensor
	Values       *graph.Tensor
	KQ           *graph.KV
	rows, latent graph.Tensor
}

// PerPosition: like a KV cache, a latent cache can be cut back to any prefix.
func (c *latentCache) PerPosition() bool { return true }

// Reset: positions past Cache.Len are never read.
func (c *latentCache) Reset(graph.Executor) {}

func (c *latentCache) Bytes() int64 {
	if c.KQ != nil {
		return c.KQ.Bytes()
	}
	return tensorBytes(c.KV)
}

func (c *latentCache) Free(e graph.Executor) {
	if c.KQ != nil {
		e.(graph.KVExecutor).FreeKV(c.KQ)
		return
	}
	e.Free(c.KV)
}

func (c *latentCache) CopyFrom(o MixerState, e graph.Executor, positions int) {
	src := o.(*latentCache)
	if c.KQ != nil {
		e.(graph.KVExecutor).CopyKV(c.KQ, src.KQ, positions)
		return
	}
	e.CopyCols(c.KV, 0, 0, src.KV, 0, 0, positions, src.KV.Cols)
}

func (a *MLA) newState(e graph.Executor, maxLen int, f kernels.KVFormat) MixerState {
	if ke, ok := e.(graph.KVExecutor); ok && f != kernels.KVF32 {
		f, group := kvLayout(f, a.RopeDim, a.KVLoraRank)
		if kq, err := ke.NewKV(maxLen, a.RopeDim+a.KVLoraRank, f, group); err == nil {
			return &latentCache{KQ: kq}
		}
	}
	kv := e.NewTensor(maxLen, a.RopeDim+a.KVLoraRank)
	return &latentCache{KV: kv, Values: kv.View(0, maxLen, a.RopeDim, a.KVLoraRank)}
}

// StateBytes is the size of the latent cache for maxLen positions in
// format f.
func (a *MLA) StateBytes(maxLen int, f kernels.KVFormat) int64 {
	f, group := kvLayout(f, a.RopeDim, a.KVLoraRank)
	return kernels.KVBytes(f, maxLen, a.RopeDim+a.KVLoraRank, group)
}

// scratch returns the layer's scratch tensors; qLatent is q from the first
// head's latent columns on (a view).
func (a *MLA) scratch(s *scratch) (qin, qNope, q, qLatent, att, v *graph.Tensor) {
	H, L, dr := a.Heads, a.KVLoraRank, a.RopeDim
	if a.QA != nil {
		qin = s.tensor("mla.qa", a.QLoraRank)
	}
	q = s.tensor("mla.q", H*(dr+L))
	return qin, s.tensor("mla.qnope", H*a.NopeDim), q, s.view("mla.q.latent", q, dr, q.Cols-dr),
		s.tensor("mla.att", H*L), s.tensor("mla.v", H*a.VDim)
}

func (a *MLA) plan(s *scratch) {
	a.scratch(s)
	s.tensor("mla.kv", a.RopeDim+a.KVLoraRank)
}

func (a *MLA) forward(r *run, out, x *graph.Tensor, _ MixerState) error {
	return a.forwardSegments(r, out, x)
}

func (a *MLA) forwardSegments(r *run, out, x *graph.Tensor) error {
	e, n := r.E, r.n
	H, L, dn, dr, dv := a.Heads, a.KVLoraRank, a.NopeDim, a.RopeDim, a.VDim
	qin, qNope, q, qLatent, att, v := a.scratch(&r.scratch)

	// 1. Query: q_a_proj -> q_a_layernorm -> q_b_proj. Each head's rotary
	// part goes to its first dr columns of q, its non-rotary part is mapped
	// into latent space (q_nope·W_k) into the next L.
	if a.QA != nil {
		e.MatMul(qin, x, n, a.QA, a.QABias)
		e.RMSNorm(qin, qin, n, a.QLoraRank, a.QANorm, a.Eps)
	} else {
		qin = x
	}
	e.MatMulHeads(q, dr+L, qin, 0, n, a.QRope)
	e.MatMul(qNope, qin, n, a.QNope, nil)
	e.MatMulHeads(qLatent, dr+L, qNope, dn, n, a.QToLatent)
	e.Rope(q, r.pos, H, dr+L, a.Rope)

	// 2. The compressed KV of the new positions: the shared key (rotated)
	// and the latent (normalised), in place. With one segment and a
	// float32 cache they are made in the cache itself; else in scratch
	// rows, stored per segment.
	rows := r.scratch.tensor("mla.kv", dr+L)
	latent := r.scratch.view("mla.kv.latent", rows, dr, L)
	direct := false
	if first := r.state(&r.segs[0]).(*latentCache); len(r.segs) == 1 && first.KQ == nil {
		rows = first.rows.SetView(first.KV, r.pos0, n, 0, dr+L)
		latent = first.latent.SetView(first.KV, r.pos0, n, dr, L)
		direct = true
	}
	e.MatMul(rows, x, n, a.KVA, a.KVABias)
	e.RMSNorm(latent, latent, n, L, a.KVANorm, a.Eps)
	e.Rope(rows, r.pos, 1, dr+L, a.Rope)

	// 3. Per segment, every head's absorbed query against its cached rows;
	// the values are the latents themselves.
	for i := range r.segs {
		s := r.segment(i)
		cache := r.state(s).(*latentCache)
		qs, atts := r.segRows(q, s), r.segRows(att, s)
		switch {
		case cache.KQ != nil:
			ke := e.(graph.KVExecutor)
			ke.StoreKV(cache.KQ, s.pos0, r.segRows(rows, s), s.n)
			ke.AttentionKV(atts, qs, cache.KQ, 0, cache.KQ, dr, s.n, s.pos0, H, 1, dr+L, L, a.Scale)
			continue
		case !direct:
			e.CopyCols(cache.KV, s.pos0, 0, rows, s.row0, 0, s.n, dr+L)
		}
		e.Attention(atts, qs, cache.KV, cache.Values, s.n, s.pos0, H, 1, dr+L, L, a.Scale)
	}

	// 4. Per head from latent space to values, then o_proj.
	e.MatMulHeads(v, dv, att, L, n, a.LatentToV)
	e.MatMul(out, v, n, a.O, a.OBias)
	return nil
}

// loadMLA reads the attention of one layer (prefix p, "model.layers.N.self_attn.")
// in any of the three layouts: Hugging Face (kv_b_proj, dense or FP8),
// older MLX conversions (kv_b_proj quantized) and newer MLX conversions
// (kv_b_proj already split into embed_q and unembed_out, quantized along
// their own last axes).
func loadMLA(w *weights, p string) *MLA {
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
	// Each head's query rows are [nope | rope] in q_b_proj: regroup them
	// as every head's nope rows, then each head's rope rows.
	var order []int
	for h := 0; h < H; h++ {
		for i := 0; i < dn; i++ {
			order = append(order, h*(dn+dr)+i)
		}
	}
	sizes := []int{H * dn}
	for h := 0; h < H; h++ {
		for i := 0; i < dr; i++ {
			order = append(order, h*(dn+dr)+dn+i)
		}
		sizes = append(sizes, dr)
	}
	parts := splitRows(q, order, sizes...)
	a.QNope, a.QRope = parts[0], parts[1:]
	// kv_a_proj_with_mqa gives [latent | rope key]; a cache row is [rope
	// key | latent].
	kvOrder := make([]int, 0, L+dr)
	for i := 0; i < dr; i++ {
		kvOrder = append(kvOrder, L+i)
	}
	for i := 0; i < L; i++ {
		kvOrder = append(kvOrder, i)
	}
	a.KVA = splitRows(a.KVA, kvOrder, L+dr)[0]
	a.KVABias = pick(a.KVABias, kvOrder)

	interleave := c.RopeInterleave == nil || *c.RopeInterleave
	// Partial rotary over heads of dr+L values: the first dr rotate.
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
