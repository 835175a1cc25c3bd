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
	// paused is a chunk stopped between layers (Segment.Until): its
	// tokens, the layer it resumes at (0: none) and its residual stream
	// rows. The layers before that one already hold its tokens (KV rows
	// past Len, recurrent states advanced), so the cache's next pass must
	// finish it, or the cache must start over (DropPaused, then Len 0).
	paused struct {
		ids   []int32
		layer int
		x     *graph.Tensor
	}
}

// Paused is the layer a chunk stopped between layers resumes at, 0 when
// none is paused (see Segment.Until).
func (c *Cache) Paused() int { return c.paused.layer }

// DropPaused forgets a paused chunk. Its tokens are in the recurrent
// states of the layers it ran, so the cache may only continue from Len 0.
func (c *Cache) DropPaused() {
	c.paused.layer = 0
	c.paused.ids = c.paused.ids[:0]
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
	if c.paused.x != nil {
		e.Free(c.paused.x)
		c.paused.x = nil
	}
	c.DropPaused()
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
	ids     []int32        // the pass's tokens, concatenated
	segs    []passSegment  // run.segs's storage
	one     [1]Segment     // Forward's segment
	last    graph.Tensor   // view of a segment's last row
	hRow    graph.Tensor   // view of the row of h it is normalised into
	wanted  [logitRows]int // segments whose logits a head pass computes
	logits  []float32      // what Forward returns for one position
}

// logitRows is how many segments' last-position logits one pass of the
// output head computes (the head is read once for all of them).
const logitRows = 8

// NewRunner prepares m to run on e: it allocates the scratch tensors every
// block needs and the routing buffers of every MoE layer.
func NewRunner(m *Model, e graph.Executor) *Runner {
	rn := &Runner{M: m, E: e, routes: map[int]*graph.Routes{}, pos: make([]int32, m.MaxBatch),
		ids: make([]int32, m.MaxBatch), segs: make([]passSegment, 0, m.MaxBatch),
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
// and its output y, and the last-position logits of up to logitRows
// segments.
func (rn *Runner) stream() (x, h, y, lastLogits *graph.Tensor) {
	hidden := rn.M.Config.HiddenSize
	return rn.scratch.tensor("x", hidden), rn.scratch.tensor("h", hidden), rn.scratch.tensor("y", hidden),
		rn.scratch.tensorRows("logits.last", min(logitRows, rn.M.MaxBatch), rn.M.Config.VocabSize)
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

// run is the state of one forward pass (see ForwardBatch): its rows are
// the segments' new tokens, concatenated.
type run struct {
	*Runner
	// n is the number of rows and pos each row's own position; pos0 is the
	// first row's. While a mixer of the one-segment shape runs (see mix),
	// they describe that segment alone.
	n     int
	pos0  int
	pos   []int32
	layer int
	// longRope: this pass uses LongRoPE's long table (Model.RopeSwitch).
	longRope bool
	// segs are the pass's segments; views are the row views of the one
	// being worked on (see segRows), nviews how many are in use.
	segs   []passSegment
	views  [segmentViews]graph.Tensor
	nviews int
	// alone is the segment a one-segment mixer runs, aloneX and aloneOut
	// its rows of the mixer's input and output (see mix).
	alone            [1]passSegment
	aloneX, aloneOut graph.Tensor
}

// passSegment is where one sequence is in a pass: its rows [row0, row0+n)
// and their positions pos0.. in its cache.
type passSegment struct {
	row0, n, pos0 int
	cache         *Cache
}

// segmentViews is how many row views of one segment a mixer may hold at
// once.
const segmentViews = 12

// segment returns segment i of the pass, releasing the row views handed
// out for the previous one.
func (r *run) segment(i int) *passSegment {
	r.nviews = 0
	return &r.segs[i]
}

// segRows returns segment s's rows of t (a tensor with a row per row of
// the pass, or a view of one) as a view valid until the next segment call.
func (r *run) segRows(t *graph.Tensor, s *passSegment) *graph.Tensor {
	v := &r.views[r.nviews]
	r.nviews++
	return v.SetView(t, s.row0, s.n, 0, t.Cols)
}

// state is segment s's state of the layer being run.
func (r *run) state(s *passSegment) MixerState { return s.cache.States[r.layer] }

// segmentMixer is a Mixer that runs every segment of a pass in one call:
// the dense parts (projections, norms, rope, output projection) over all
// rows at once, the per-sequence parts (cache store and attention, conv
// and scan) on each segment's rows with its own state (r.segs). Its
// forward is the same function and ignores st, which r.segs also holds.
type segmentMixer interface {
	forwardSegments(r *run, out, x *graph.Tensor) error
}

// mix runs a layer's mixer over the pass: in one call when it is a
// segmentMixer, else once per segment on that segment's rows, with r
// describing the segment alone (any mixer of the one-segment shape runs
// batched unchanged).
func (r *run) mix(mx Mixer, out, x *graph.Tensor) error {
	if sm, ok := mx.(segmentMixer); ok {
		return sm.forwardSegments(r, out, x)
	}
	return r.mixEach(mx, out, x)
}

// mixEach runs mx once per segment of the pass, on that segment's rows,
// with r describing the segment alone.
func (r *run) mixEach(mx Mixer, out, x *graph.Tensor) error {
	n, pos0, pos, segs := r.n, r.pos0, r.pos, r.segs
	var err error
	for i := range segs {
		s := &segs[i]
		xs := r.aloneX.SetView(x, s.row0, s.n, 0, x.Cols)
		outs := r.aloneOut.SetView(out, s.row0, s.n, 0, out.Cols)
		// The segment alone, its rows from 0 (those of xs and outs).
		r.alone[0] = passSegment{n: s.n, pos0: s.pos0, cache: s.cache}
		r.n, r.pos0, r.pos, r.segs = s.n, s.pos0, pos[s.row0:s.row0+s.n], r.alone[:]
		err = mx.forward(r, outs, xs, r.state(&r.alone[0]))
		r.segs = segs
		if err != nil {
			if len(segs) > 1 {
				err = fmt.Errorf("segment %d: %w", i, err)
			}
			break
		}
	}
	r.n, r.pos0, r.pos = n, pos0, pos
	return err
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
// logits are the runner's own buffer, valid until the next Forward. It is
// ForwardBatch with one segment.
func (rn *Runner) Forward(c *Cache, ids []int32, all bool) ([]float32, error) {
	if err := rn.checkSegment(c, ids); err != nil {
		return nil, err
	}
	ids, skip, err := rn.ropeTable(c, ids)
	if err != nil {
		return nil, err
	}
	defer func() { rn.one[0] = Segment{} }() // keep nothing of the caller's
	var out []float32
	for start := 0; start < len(ids); start += rn.M.MaxBatch {
		chunk := ids[start:min(start+rn.M.MaxBatch, len(ids))]
		last := start+len(chunk) == len(ids)
		rn.one[0] = Segment{Cache: c, IDs: chunk}
		if last && !all {
			rn.one[0].Logits = rn.logits
		}
		logits, err := rn.pass(rn.one[:], all)
		if err != nil {
			return nil, err
		}
		if all {
			out = append(out, logits...)
		} else if last {
			out = rn.logits
		}
	}
	if all {
		out = out[skip*rn.M.Config.VocabSize:]
	}
	return out, nil
}

// pass runs one forward pass over segs (checked by the caller) and fills
// each segment's Logits; with all (one segment only) it returns the logits
// of every row instead.
func (rn *Runner) pass(segs []Segment, all bool) ([]float32, error) {
	m, e := rn.M, rn.E
	if err := rn.checkNorms(); err != nil {
		return nil, err
	}
	r := &rn.run
	// The layers the pass runs: all of them, or (one segment alone) from
	// where the cache's paused chunk stopped to the segment's Until.
	from, until := 0, len(m.Layers)
	if len(segs) == 1 {
		from = segs[0].Cache.paused.layer
		if segs[0].Until > 0 {
			until = segs[0].Until
		}
	}
	// 1. The rows: every segment's new tokens at its own positions.
	r.segs = rn.segs[:0]
	n := 0
	for _, sg := range segs {
		c := sg.Cache
		if c.Len == 0 && from == 0 {
			// A new sequence: recurrent state left by an earlier one (a
			// cache reused by a session, or one a failed pass stopped in
			// the middle of) must not leak into it. Per-position caches
			// need nothing.
			for _, s := range c.States {
				s.Reset(e)
			}
		}
		if m.RopeSwitch > 0 {
			c.ids = append(c.ids[:c.Len], sg.IDs...)
		}
		r.segs = append(r.segs, passSegment{row0: n, n: len(sg.IDs), pos0: c.Len, cache: c})
		copy(rn.ids[n:], sg.IDs)
		for i := range sg.IDs {
			rn.pos[n+i] = int32(c.Len + i)
		}
		n += len(sg.IDs)
	}
	r.n, r.pos0, r.pos = n, r.segs[0].pos0, rn.pos[:n]
	// 2. The layers: dense parts over all rows, mixers per segment.
	hidden := m.Config.HiddenSize
	x, h, y, _ := rn.stream()
	sc, err := m.scaler(e)
	if err != nil {
		return nil, err
	}
	if from == 0 {
		e.Embed(x, m.Embed, rn.ids[:n])
		scaleRows(sc, x, n, m.EmbedScale)
	} else {
		e.CopyCols(x, 0, 0, segs[0].Cache.paused.x, 0, 0, n, hidden)
	}
	for l := from; l < until; l++ {
		layer := m.Layers[l]
		r.layer = l
		rn.norm(h, x, n, layer.InputNorm, layer.InputNormBias)
		if err := r.mix(layer.Mixer, y, h); err != nil {
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
	if until < len(m.Layers) {
		return nil, rn.pause(segs[0], until, x)
	}
	for _, s := range r.segs {
		s.cache.Len += s.n
		s.cache.DropPaused()
	}
	// 3. The logits.
	if all {
		// Every position's logits: the vocabulary is wide (152k for
		// Qwen), so this full-batch tensor is made only when first asked
		// for.
		vocab := m.Config.VocabSize
		rn.norm(h, x, n, m.Norm, m.NormBias)
		logits := r.scratch.tensor("logits", vocab)
		e.MatMul(logits, h, n, m.Head, m.HeadBias)
		if err := e.Sync(); err != nil {
			return nil, err
		}
		return slices.Clone(e.Read(logits)[:n*vocab]), nil
	}
	return nil, rn.lastLogits(segs, x, h)
}

// pause keeps the residual stream of seg's rows (in x) in its cache, to
// resume at layer until in a later pass.
func (rn *Runner) pause(seg Segment, until int, x *graph.Tensor) error {
	c, e, n := seg.Cache, rn.E, len(seg.IDs)
	if c.paused.x == nil || c.paused.x.Rows < n {
		if c.paused.x != nil {
			e.Free(c.paused.x)
		}
		c.paused.x = e.NewTensor(n, x.Cols)
	}
	e.CopyCols(c.paused.x, 0, 0, x, 0, 0, n, x.Cols)
	c.paused.layer = until
	c.paused.ids = append(c.paused.ids[:0], seg.IDs...)
	return e.Sync()
}

// lastLogits computes the logits of each segment's last row that asks for
// them: the row is normalised into a row of h, and the output head runs
// over up to logitRows such rows at once.
func (rn *Runner) lastLogits(segs []Segment, x, h *graph.Tensor) error {
	m, e := rn.M, rn.E
	hidden, vocab := m.Config.HiddenSize, m.Config.VocabSize
	_, _, _, logits := rn.stream()
	k, asked := 0, false
	flush := func() error {
		if k == 0 {
			return nil
		}
		e.MatMul(logits, h, k, m.Head, m.HeadBias)
		if err := e.Sync(); err != nil {
			return err
		}
		out := e.Read(logits)
		for j, i := range rn.wanted[:k] {
			copy(segs[i].Logits, out[j*vocab:(j+1)*vocab])
		}
		k = 0
		return nil
	}
	for i, sg := range segs {
		if sg.Logits == nil {
			continue
		}
		s := &rn.run.segs[i]
		rn.norm(rn.hRow.SetView(h, k, 1, 0, hidden), rn.last.SetView(x, s.row0+s.n-1, 1, 0, hidden), 1, m.Norm, m.NormBias)
		rn.wanted[k], asked = i, true
		if k++; k == logits.Rows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if !asked {
		return e.Sync()
	}
	return flush()
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
