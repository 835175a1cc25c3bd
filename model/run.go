package model

import (
	"fmt"
	"slices"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Cache is everything a sequence keeps across forward passes: each layer's
// mixer state (KV cache or recurrent state) and how many positions are in it.
type Cache struct {
	Len, MaxLen int
	States      []MixerState
	// ids and longRope: what a LongRoPE model (Model.RopeSwitch) needs to
	// recompute the cached positions under the other rotary table.
	ids      []int32
	longRope bool
}

// NewCache allocates a cache for up to maxLen positions on e.
func (m *Model) NewCache(e graph.Executor, maxLen int) *Cache {
	c := &Cache{MaxLen: maxLen, States: make([]MixerState, len(m.Layers))}
	if m.RopeSwitch > 0 {
		c.ids = make([]int32, 0, maxLen)
	}
	f := m.kvFormatOn(e)
	for i, l := range m.Layers {
		c.States[i] = l.Mixer.newState(e, maxLen, f)
	}
	return c
}

// NewRecurrentCache allocates only the state that cannot be rewound (the
// recurrent layers'; the per-position layers' entries are nil): a snapshot
// that, copied into a live cache whose KV caches already hold the same
// prefix, restores it without a second copy of the KV caches.
func (m *Model) NewRecurrentCache(e graph.Executor) *Cache {
	c := &Cache{States: make([]MixerState, len(m.Layers))}
	for i, l := range m.Layers {
		if st := l.Mixer.newState(e, 1, kernels.KVF32); !st.PerPosition() {
			c.States[i] = st
		} else {
			st.Free(e)
		}
	}
	return c
}

// RecurrentBytes is the memory of NewRecurrentCache's states.
func (m *Model) RecurrentBytes() int64 { return m.CacheBytes(0) }

// CopyFrom makes c hold the same positions as o (same model; c at least
// as long). Layers either cache lacks (a recurrent-only cache) are left
// as they are.
func (c *Cache) CopyFrom(o *Cache, e graph.Executor) {
	for i, s := range c.States {
		if s != nil && o.States[i] != nil {
			s.CopyFrom(o.States[i], e, o.Len)
		}
	}
	c.Len = o.Len
	if len(o.ids) >= o.Len {
		c.ids, c.longRope = append(c.ids[:0], o.ids[:o.Len]...), o.longRope
	}
}

// Free releases the cache's tensors on e (the executor it was made on);
// the cache must not be used afterwards.
func (c *Cache) Free(e graph.Executor) {
	for _, s := range c.States {
		if s != nil {
			s.Free(e)
		}
	}
	c.States, c.Len, c.MaxLen = nil, 0, 0
}

// Bytes is the memory the cache's tensors hold (what its executor
// allocated, not what its length uses).
func (c *Cache) Bytes() int64 {
	var n int64
	for _, s := range c.States {
		if s != nil {
			n += s.Bytes()
		}
	}
	return n
}

// Rewindable reports whether the cache can be cut back to a shorter prefix
// by lowering Len: true when every layer keeps per-position state (KV
// caches); recurrent state (linear attention) cannot be rewound.
func (c *Cache) Rewindable() bool {
	for _, s := range c.States {
		if s != nil && !s.PerPosition() {
			return false
		}
	}
	return true
}

// Trace receives intermediate values of a forward pass, for tests and the
// profiler. Any field may be nil.
type Trace struct {
	// LayerOutput gets decoder layer l's output rows (n*hidden values).
	LayerOutput func(l int, rows []float32)
	// Routes gets MoE layer l's routing of the batch.
	Routes func(l int, r *graph.Routes)
}

// Runner runs forward passes of one model on one executor. Its scratch
// tensors are planned when it is made (every block asks for its tensors
// once, for the largest batch; blocks of the same shape share them), so a
// forward pass allocates nothing on the executor.
type Runner struct {
	M     *Model
	E     graph.Executor
	Trace *Trace
	// Prefetch predicts each next MoE layer's experts during decode and
	// starts loading them early (when the experts are paged).
	Prefetch bool

	scratch scratch
	routes  map[int]*graph.Routes
	run     run // the pass in progress, reused
	pos     []int32
	last    graph.Tensor // view of the batch's last row
	logits  []float32    // what Forward returns for one position
}

// NewRunner prepares m to run on e: it allocates the scratch tensors every
// block needs and the routing buffers of every MoE layer.
func NewRunner(m *Model, e graph.Executor) *Runner {
	rn := &Runner{M: m, E: e, routes: map[int]*graph.Routes{}, pos: make([]int32, m.MaxBatch),
		scratch: scratch{e: e, rows: m.MaxBatch, kv: m.kvFormatOn(e), byKey: map[scratchKey]*graph.Tensor{}}}
	rn.run.Runner = rn
	rn.stream()
	for _, l := range m.Layers {
		l.Mixer.plan(&rn.scratch)
		l.FFN.plan(&rn.scratch)
		if moe, ok := l.FFN.(*MoE); ok {
			rn.routesFor(moe.Layer, moe.Routing.TopK)
			if moe.Next != nil {
				rn.routesFor(-1-moe.Next.Layer, moe.Next.Routing.TopK)
			}
		}
	}
	rn.logits = make([]float32, m.Config.VocabSize)
	return rn
}

// stream returns the residual stream x, the normalised input h of a block
// and its output y, and the one-row logits of a decode step.
func (rn *Runner) stream() (x, h, y, lastLogits *graph.Tensor) {
	hidden := rn.M.Config.HiddenSize
	return rn.scratch.tensor("x", hidden), rn.scratch.tensor("h", hidden), rn.scratch.tensor("y", hidden),
		rn.scratch.tensorRows("logits.last", 1, rn.M.Config.VocabSize)
}

// scratch is a runner's buffer plan: tensors keyed by name and shape,
// allocated once and reused by every pass.
type scratch struct {
	e     graph.Executor
	rows  int // MaxBatch
	kv    kernels.KVFormat
	byKey map[scratchKey]*graph.Tensor
	owned []*graph.Tensor // what NewTensor made (byKey also holds views)
}

type scratchKey struct {
	name       string
	rows, cols int
}

// tensor returns the scratch tensor called name with cols columns and
// MaxBatch rows, allocating it the first time (when the runner is planned).
func (s *scratch) tensor(name string, cols int) *graph.Tensor {
	return s.tensorRows(name, s.rows, cols)
}

// tensorRows is tensor for a scratch tensor of a given number of rows.
func (s *scratch) tensorRows(name string, rows, cols int) *graph.Tensor {
	k := scratchKey{name, rows, cols}
	t, ok := s.byKey[k]
	if !ok {
		t = s.e.NewTensor(rows, cols)
		s.byKey[k] = t
		s.owned = append(s.owned, t)
	}
	return t
}

// Free releases the runner's scratch tensors on its executor; the runner
// must not run afterwards.
func (rn *Runner) Free() {
	for _, t := range rn.scratch.owned {
		rn.E.Free(t)
	}
	rn.scratch.owned, rn.scratch.byKey = nil, nil
}

// view returns the planned view called name: columns [c0, c0+cols) of
// every row of t (a scratch tensor).
func (s *scratch) view(name string, t *graph.Tensor, c0, cols int) *graph.Tensor {
	k := scratchKey{name, t.Rows, cols}
	v, ok := s.byKey[k]
	if !ok {
		v = t.View(0, t.Rows, c0, cols)
		s.byKey[k] = v
	}
	return v
}

// run is the state of one forward pass over a batch of n tokens.
type run struct {
	*Runner
	n     int
	pos0  int
	pos   []int32
	layer int
	// longRope: this pass uses LongRoPE's long table (Model.RopeSwitch).
	longRope bool
}

func (r *Runner) routesFor(layer, topK int) *graph.Routes {
	rt, ok := r.routes[layer]
	if !ok {
		rt = &graph.Routes{TopK: topK, IDs: make([]int32, r.M.MaxBatch*topK), Weights: make([]float32, r.M.MaxBatch*topK)}
		r.routes[layer] = rt
	}
	return rt
}

// Forward appends ids to the sequence in c and returns the logits: of every
// new position ([len(ids)*vocab]) when all is set, else of the last one.
// Prompts longer than MaxBatch are processed in chunks. The last position's
// logits are the runner's own buffer, valid until the next Forward.
func (rn *Runner) Forward(c *Cache, ids []int32, all bool) ([]float32, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("no tokens to process")
	}
	if c.Len+len(ids) > c.MaxLen {
		return nil, fmt.Errorf("sequence of %d tokens exceeds the context of %d", c.Len+len(ids), c.MaxLen)
	}
	vocab := rn.M.Config.VocabSize
	for _, id := range ids {
		if id < 0 || int(id) >= vocab {
			return nil, fmt.Errorf("token id %d is outside the vocabulary (0..%d)", id, vocab-1)
		}
	}
	ids, skip, err := rn.ropeTable(c, ids)
	if err != nil {
		return nil, err
	}
	var out []float32
	for start := 0; start < len(ids); start += rn.M.MaxBatch {
		chunk := ids[start:min(start+rn.M.MaxBatch, len(ids))]
		last := start+len(chunk) == len(ids)
		logits, err := rn.forwardChunk(c, chunk, all || last, !all)
		if err != nil {
			return nil, err
		}
		if all {
			out = append(out, logits...)
		} else if last {
			out = logits
		}
	}
	if all {
		out = out[skip*vocab:]
	}
	return out, nil
}

func (rn *Runner) forwardChunk(c *Cache, ids []int32, wantLogits, lastOnly bool) ([]float32, error) {
	m, e := rn.M, rn.E
	if err := rn.checkNorms(); err != nil {
		return nil, err
	}
	n := len(ids)
	if m.RopeSwitch > 0 {
		c.ids = append(c.ids[:c.Len], ids...)
	}
	r := &rn.run
	r.n, r.pos0, r.pos = n, c.Len, rn.pos[:n]
	for i := range r.pos {
		r.pos[i] = int32(c.Len + i)
	}
	if c.Len == 0 {
		// A new sequence: recurrent state left by an earlier one (a cache
		// reused by a session, or one a failed pass stopped in the middle
		// of) must not leak into it. Per-position caches need nothing.
		for _, s := range c.States {
			s.Reset(e)
		}
	}
	hidden := m.Config.HiddenSize
	x, h, y, lastLogits := rn.stream()
	e.Embed(x, m.Embed, ids)
	sc, err := m.scaler(e)
	if err != nil {
		return nil, err
	}
	scaleRows(sc, x, n, m.EmbedScale)
	for l, layer := range m.Layers {
		r.layer = l
		rn.norm(h, x, n, layer.InputNorm, layer.InputNormBias)
		if err := layer.Mixer.forward(r, y, h, c.States[l]); err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		scaleRows(sc, y, n, m.ResidualScale)
		e.Add(x, x, y, n)
		rn.norm(h, x, n, layer.PostNorm, layer.PostNormBias)
		if err := layer.FFN.forward(r, y, h); err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		scaleRows(sc, y, n, m.ResidualScale)
		e.Add(x, x, y, n)
		if rn.Trace != nil && rn.Trace.LayerOutput != nil {
			if err := e.Sync(); err != nil {
				return nil, err
			}
			rn.Trace.LayerOutput(l, e.Read(x)[:n*hidden])
		}
	}
	c.Len += n
	if !wantLogits {
		return nil, e.Sync()
	}
	vocab := m.Config.VocabSize
	if lastOnly {
		// Only the last position's logits are needed: normalise one row
		// (a view of x) into a one-row logits tensor.
		rn.norm(h, rn.last.SetView(x, n-1, 1, 0, hidden), 1, m.Norm, m.NormBias)
		e.MatMul(lastLogits, h, 1, m.Head, m.HeadBias)
		if err := e.Sync(); err != nil {
			return nil, err
		}
		copy(rn.logits, e.Read(lastLogits))
		return rn.logits, nil
	}
	// Every position's logits: the vocabulary is wide (152k for Qwen), so
	// this full-batch tensor is made only when first asked for.
	rn.norm(h, x, n, m.Norm, m.NormBias)
	logits := r.scratch.tensor("logits", vocab)
	e.MatMul(logits, h, n, m.Head, m.HeadBias)
	if err := e.Sync(); err != nil {
		return nil, err
	}
	return slices.Clone(e.Read(logits)[:n*vocab]), nil
}

// CacheBytes is the memory a cache of maxLen positions takes with KV
// caches in m.KVFormat.
func (m *Model) CacheBytes(maxLen int) int64 {
	var total int64
	for _, l := range m.Layers {
		total += l.Mixer.StateBytes(maxLen, m.KVFormat)
	}
	return total
}

// kvFormatOn is the KV format caches on e get: m.KVFormat when e stores
// compact KV caches, else float32.
func (m *Model) kvFormatOn(e graph.Executor) kernels.KVFormat {
	if _, ok := e.(graph.KVExecutor); ok {
		return m.KVFormat
	}
	return kernels.KVF32
}
