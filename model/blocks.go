package model

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Attention is grouped-query softmax attention with a KV cache, the mixer
// of most families. Optional parts: projection biases, q/k RMSNorm per head
// (or over the whole projection, OLMoE), an output gate (Qwen3-Next: q_proj
// also yields a per-head gate, split off into QGate when the model is
// loaded, and the output is multiplied by its sigmoid).
type Attention struct {
	Heads, KVHeads, HeadDim int
	Q, K, V, O              *kernels.Matrix
	QBias, KBias, VBias     []float32
	OBias                   []float32 // o_proj's bias (PhiMoE)
	QNorm, KNorm            []float32
	// NormWhole applies QNorm/KNorm over the whole projection, not per head.
	NormWhole bool
	// NormAfterRope applies QNorm/KNorm to the rotated q and k (Hunyuan),
	// not before the rotary embedding.
	NormAfterRope bool
	// QGate (gated attention only) gives each head's output gate; QGateBias
	// is its part of q_proj's bias.
	QGate     *kernels.Matrix
	QGateBias []float32
	Rope      *kernels.RopeParams
	Eps       float32
	Scale     float32
}

// kvCache is an attention layer's cache: K and V rows per position. In
// float32 (K, V) the projections write the new positions straight into it,
// through the row views kNew and vNew; at half precision or quantized (KQ,
// VQ, on an executor that stores them) they are projected into scratch rows
// and converted in.
type kvCache struct {
	K, V       *graph.Tensor
	KQ, VQ     *graph.KV
	kNew, vNew graph.Tensor
}

// PerPosition: a KV cache can be cut back to any prefix.
func (c *kvCache) PerPosition() bool { return true }

func (c *kvCache) CopyFrom(o MixerState, e graph.Executor, positions int) {
	src := o.(*kvCache)
	if c.KQ != nil {
		ke := e.(graph.KVExecutor)
		ke.CopyKV(c.KQ, src.KQ, positions)
		ke.CopyKV(c.VQ, src.VQ, positions)
		return
	}
	e.CopyCols(c.K, 0, 0, src.K, 0, 0, positions, src.K.Cols)
	e.CopyCols(c.V, 0, 0, src.V, 0, 0, positions, src.V.Cols)
}

// Reset: positions past Cache.Len are never read, so a new sequence needs
// nothing cleared.
func (c *kvCache) Reset(graph.Executor) {}

func (c *kvCache) Bytes() int64 {
	if c.KQ != nil {
		return c.KQ.Bytes() + c.VQ.Bytes()
	}
	return tensorBytes(c.K, c.V)
}

// tensorBytes is the memory of float32 tensors.
func tensorBytes(ts ...*graph.Tensor) int64 {
	var n int64
	for _, t := range ts {
		n += 4 * int64(len(t.Data))
	}
	return n
}

func (c *kvCache) Free(e graph.Executor) {
	if c.KQ != nil {
		ke := e.(graph.KVExecutor)
		ke.FreeKV(c.KQ)
		ke.FreeKV(c.VQ)
		return
	}
	e.Free(c.K)
	e.Free(c.V)
}

func (a *Attention) newState(e graph.Executor, maxLen int, f kernels.KVFormat) MixerState {
	cols := a.KVHeads * a.HeadDim
	if ke, ok := e.(graph.KVExecutor); ok && f != kernels.KVF32 {
		f, group := kvLayout(f, a.HeadDim)
		k, errK := ke.NewKV(maxLen, cols, f, group)
		v, errV := ke.NewKV(maxLen, cols, f, group)
		if errK == nil && errV == nil {
			return &kvCache{KQ: k, VQ: v}
		}
	}
	return &kvCache{K: e.NewTensor(maxLen, cols), V: e.NewTensor(maxLen, cols)}
}

// kvLayout is the format and quantization group a cache of rows read in
// pieces of the given widths gets: f, or f16 when the widths do not divide
// into groups of at least 8.
func kvLayout(f kernels.KVFormat, widths ...int) (kernels.KVFormat, int) {
	group := kernels.KVGroup(widths...)
	if f.Quantized() && group == 0 {
		return kernels.KVF16, 0
	}
	return f, group
}

// scratch returns the layer's scratch tensors (shared by every attention
// layer of the same shape).
func (a *Attention) scratch(s *scratch) (q, gate, att *graph.Tensor) {
	qd := a.Heads * a.HeadDim
	q, att = s.tensor("attn.q", qd), s.tensor("attn.out", qd)
	if a.QGate != nil {
		gate = s.tensor("attn.gate", qd)
	}
	return q, gate, att
}

// kvScratch returns the rows the new keys and values are projected into
// before a half or quantized cache stores them.
func (a *Attention) kvScratch(s *scratch) (k, v *graph.Tensor) {
	kd := a.KVHeads * a.HeadDim
	return s.tensor("attn.k", kd), s.tensor("attn.v", kd)
}

func (a *Attention) plan(s *scratch) {
	a.scratch(s)
	a.kvScratch(s)
}

func (a *Attention) forward(r *run, out, x *graph.Tensor, _ MixerState) error {
	return a.forwardSegments(r, out, x)
}

func (a *Attention) forwardSegments(r *run, out, x *graph.Tensor) error {
	e, n := r.E, r.n
	q, gate, att := a.scratch(&r.scratch)
	// 1. Projections of all rows. With one segment and a float32 cache
	// the new keys and values go straight into the cache; else into
	// scratch rows, stored per segment after the rotary embedding.
	k, v := a.kvScratch(&r.scratch)
	direct := false
	if first := r.state(&r.segs[0]).(*kvCache); len(r.segs) == 1 && first.KQ == nil {
		k = first.kNew.SetView(first.K, r.pos0, n, 0, first.K.Cols)
		v = first.vNew.SetView(first.V, r.pos0, n, 0, first.V.Cols)
		direct = true
	}
	e.MatMul(q, x, n, a.Q, a.QBias)
	if a.QGate != nil {
		e.MatMul(gate, x, n, a.QGate, a.QGateBias)
	}
	e.MatMul(k, x, n, a.K, a.KBias)
	e.MatMul(v, x, n, a.V, a.VBias)
	// 2. q/k norms and rotary embedding (each row at its own position),
	// in place.
	if !a.NormAfterRope {
		a.normQK(e, q, k, n)
	}
	if a.Rope != nil { // nil: no positional embedding (Jamba)
		e.Rope(q, r.pos, a.Heads, a.HeadDim, a.Rope)
		e.Rope(k, r.pos, a.KVHeads, a.HeadDim, a.Rope)
	}
	if a.NormAfterRope {
		a.normQK(e, q, k, n)
	}
	// 3. Per segment: store its keys and values, attend over its cache.
	for i := range r.segs {
		s := r.segment(i)
		cache := r.state(s).(*kvCache)
		qs, atts := r.segRows(q, s), r.segRows(att, s)
		switch {
		case cache.KQ != nil:
			ke := e.(graph.KVExecutor)
			ke.StoreKV(cache.KQ, s.pos0, r.segRows(k, s), s.n)
			ke.StoreKV(cache.VQ, s.pos0, r.segRows(v, s), s.n)
			ke.AttentionKV(atts, qs, cache.KQ, 0, cache.VQ, 0, s.n, s.pos0, a.Heads, a.KVHeads, a.HeadDim, a.HeadDim, a.Scale)
			continue
		case !direct:
			e.CopyCols(cache.K, s.pos0, 0, k, s.row0, 0, s.n, k.Cols)
			e.CopyCols(cache.V, s.pos0, 0, v, s.row0, 0, s.n, v.Cols)
		}
		e.Attention(atts, qs, cache.K, cache.V, s.n, s.pos0, a.Heads, a.KVHeads, a.HeadDim, a.HeadDim, a.Scale)
	}
	// 4. The output gate and o_proj over all rows.
	if gate != nil {
		e.MulSigmoid(att, att, gate, n)
	}
	e.MatMul(out, att, n, a.O, a.OBias)
	return nil
}

// normQK applies the q/k RMSNorms (when the layer has them) in place.
func (a *Attention) normQK(e graph.Executor, q, k *graph.Tensor, n int) {
	if a.QNorm == nil {
		return
	}
	qdim, kdim := a.HeadDim, a.HeadDim
	if a.NormWhole {
		qdim, kdim = q.Cols, k.Cols
	}
	e.RMSNorm(q, q, n, qdim, a.QNorm, a.Eps)
	e.RMSNorm(k, k, n, kdim, a.KNorm, a.Eps)
}

// MLP is a dense SwiGLU feed-forward block: down(silu(gate x) * up x).
type MLP struct {
	Gate, Up, Down *kernels.Matrix
}

func (m *MLP) scratch(s *scratch) (g, u *graph.Tensor) {
	return s.tensor("mlp.gate", m.Gate.Rows), s.tensor("mlp.up", m.Up.Rows)
}

func (m *MLP) plan(s *scratch) { m.scratch(s) }

func (m *MLP) forward(r *run, out, x *graph.Tensor) error {
	e, n := r.E, r.n
	g, u := m.scratch(&r.scratch)
	e.MatMul(g, x, n, m.Gate, nil)
	e.MatMul(u, x, n, m.Up, nil)
	e.SwiGLU(g, g, u, n)
	e.MatMul(out, g, n, m.Down, nil)
	return nil
}

// MoE is a sparse mixture-of-experts block: a router picks TopK experts per
// token, their SwiGLU outputs are summed with the routing weights, plus an
// optional shared expert (scaled by sigmoid(SharedGate x) when SharedGate
// is set).
type MoE struct {
	Layer int
	// Next is the following MoE layer, whose experts Prefetch predicts.
	Next    *MoE
	Router  *kernels.Matrix
	Routing kernels.Routing
	Experts graph.ExpertSet
	// source is where the experts are on disk when they were loaded lazily
	// (kept when AttachExperts replaces Experts, for ResidentBytes).
	source     *ExpertSource
	Shared     *MLP
	SharedGate *kernels.Matrix
	// RouterBias is added to the router logits (gpt-oss).
	RouterBias []float32
	// Biased (gpt-oss) gives the experts biases and the clamped SwiGLU:
	// they run through the executor's graph.ClampedMoE.
	Biased *graph.BiasedExperts
}

// scratch returns the block's scratch tensors: router logits, the shared
// expert's output and gate (nil without them) and the next layer's router
// logits for prefetching (nil for the last MoE layer).
func (m *MoE) scratch(s *scratch) (logits, shared, sharedGate, prefetch *graph.Tensor) {
	logits = s.tensor("moe.logits", m.Router.Rows)
	if m.Shared != nil {
		shared = s.tensor("moe.shared", m.Shared.Down.Rows)
		if m.SharedGate != nil {
			sharedGate = s.tensor("moe.sharedgate", 1)
		}
	}
	if m.Next != nil {
		prefetch = s.tensorRows("moe.prefetch", min(prefetchRows, s.rows), m.Next.Router.Rows)
	}
	return logits, shared, sharedGate, prefetch
}

func (m *MoE) plan(s *scratch) {
	m.scratch(s)
	if m.Shared != nil {
		m.Shared.plan(s)
	}
}

func (m *MoE) forward(r *run, out, x *graph.Tensor) error {
	e, n := r.E, r.n
	logits, s, g, prefetch := m.scratch(&r.scratch)
	e.MatMul(logits, x, n, m.Router, m.RouterBias)
	routes := r.routesFor(m.Layer, m.Routing.TopK)
	e.Route(routes, logits, n, &m.Routing)
	if r.Trace != nil && r.Trace.Routes != nil {
		if err := e.Sync(); err != nil {
			return err
		}
		r.Trace.Routes(m.Layer, routes)
	}
	if r.Prefetch && prefetch != nil && n == len(r.segs) && n <= prefetch.Rows {
		// A decode step (one row per sequence).
		if err := m.prefetchNext(r, x, prefetch); err != nil {
			return err
		}
	}
	if bp, ok := m.Experts.(batchPlanner); ok && r.Prefetch && n > 1 {
		// Prompt chunks: the pager loads each next group of experts while
		// the executor runs the current one (see pagedExperts.PlanBatch).
		if err := r.E.Sync(); err != nil {
			return err
		}
		bp.PlanBatch(routes.IDs[:n*m.Routing.TopK])
	}
	ov, _ := m.Experts.(readOverlapper)
	if ov != nil {
		// CPU decode and prefill: resident experts run while misses load.
		ov.OverlapReads(r.Prefetch)
	}
	err := m.runExperts(e, out, x, n, routes)
	if ov != nil {
		if ferr := ov.FinishReads(); ferr != nil {
			err = ferr // the pager's error names the file and offset
		}
	}
	if err != nil {
		return fmt.Errorf("experts: %w", err)
	}
	if m.Shared == nil {
		return nil
	}
	if err := m.Shared.forward(r, s, x); err != nil {
		return err
	}
	if g != nil {
		e.MatMul(g, x, n, m.SharedGate, nil)
		e.MulSigmoid(s, s, g, n)
	}
	e.Add(out, out, s, n)
	return nil
}

// runExperts runs the routed experts: e.MoE, or, for biased experts, the
// executor's ClampedMoE.
func (m *MoE) runExperts(e graph.Executor, out, x *graph.Tensor, n int, routes *graph.Routes) error {
	if m.Biased == nil {
		return e.MoE(out, x, n, routes, m.Experts)
	}
	ce, ok := e.(graph.ClampedMoE)
	if !ok {
		return fmt.Errorf("executor %s cannot run biased, clamped experts (gpt-oss)", e.Name())
	}
	return ce.MoEClamped(out, x, n, routes, m.Experts, m.Biased)
}

// readOverlapper is an ExpertSet whose Resolve can return before the
// misses are read, Expert then waiting for each; FinishReads waits for the
// rest and reports a failed read.
type readOverlapper interface {
	OverlapReads(on bool)
	FinishReads() error
}

// batchPlanner is an ExpertSet that wants a prompt chunk's routes before
// the executor resolves them in groups.
type batchPlanner interface {
	PlanBatch(ids []int32)
}

// Prefetcher is an ExpertSet that can start loading experts early.
type Prefetcher interface {
	Prefetch(ids []int32)
}

// prefetchRows is the most rows of a decode step (one per sequence) whose
// next-layer experts Prefetch predicts.
const prefetchRows = 8

// prefetchNext predicts the next MoE layer's experts by applying its router
// to this layer's input (the residual stream changes little from one layer
// to the next) and asks the pager to start loading them while this layer's
// experts run. Decode only (r.n rows, one per sequence): it reads the
// prediction on the host.
func (m *MoE) prefetchNext(r *run, x, logits *graph.Tensor) error {
	next := m.Next
	pf, ok := next.Experts.(Prefetcher)
	if !ok {
		return nil
	}
	r.E.MatMul(logits, x, r.n, next.Router, next.RouterBias)
	routes := r.routesFor(-1-next.Layer, next.Routing.TopK)
	r.E.Route(routes, logits, r.n, &next.Routing)
	if err := r.E.Sync(); err != nil {
		return err
	}
	pf.Prefetch(routes.IDs[:r.n*next.Routing.TopK])
	return nil
}

// ResidentExperts keeps every expert of a layer in memory.
type ResidentExperts struct {
	Gate, Up, Down []*kernels.Matrix
	present        []bool // Resolve's answer, reused
}

func (x *ResidentExperts) NumExperts() int { return len(x.Gate) }

func (x *ResidentExperts) MaxResolve() int { return 0 }

// Resolve reports every expert present. The slice it returns is reused by
// the next call.
func (x *ResidentExperts) Resolve(ids []int32) ([]bool, error) {
	if cap(x.present) < len(ids) {
		x.present = make([]bool, len(ids))
	}
	present := x.present[:len(ids)]
	for i, id := range ids {
		if int(id) >= len(x.Gate) || id < 0 {
			return nil, fmt.Errorf("expert id %d out of range (%d experts)", id, len(x.Gate))
		}
		present[i] = true
	}
	return present, nil
}

func (x *ResidentExperts) Expert(id int32) (gate, up, down *kernels.Matrix) {
	return x.Gate[id], x.Up[id], x.Down[id]
}

// StateBytes is the size of the K and V caches for maxLen positions in
// format f.
func (a *Attention) StateBytes(maxLen int, f kernels.KVFormat) int64 {
	f, group := kvLayout(f, a.HeadDim)
	return 2 * kernels.KVBytes(f, maxLen, a.KVHeads*a.HeadDim, group)
}
