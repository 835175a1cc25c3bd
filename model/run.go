package model

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
)

// Cache is everything a sequence keeps across forward passes: each layer's
// mixer state (KV cache or recurrent state) and how many positions are in it.
type Cache struct {
	Len, MaxLen int
	States      []MixerState
}

// NewCache allocates a cache for up to maxLen positions on e.
func (m *Model) NewCache(e graph.Executor, maxLen int) *Cache {
	c := &Cache{MaxLen: maxLen, States: make([]MixerState, len(m.Layers))}
	for i, l := range m.Layers {
		c.States[i] = l.Mixer.newState(e, maxLen)
	}
	return c
}

// CopyFrom makes c hold the same positions as o (same model; c at least
// as long).
func (c *Cache) CopyFrom(o *Cache, e graph.Executor) {
	for i, s := range c.States {
		s.CopyFrom(o.States[i], e, o.Len)
	}
	c.Len = o.Len
}

// Rewindable reports whether the cache can be cut back to a shorter prefix
// by lowering Len: true when every layer keeps per-position state (KV
// caches); recurrent state (linear attention) cannot be rewound.
func (c *Cache) Rewindable() bool {
	for _, s := range c.States {
		if p, ok := s.(interface{ PerPosition() bool }); !ok || !p.PerPosition() {
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

// Runner runs forward passes of one model on one executor, with the
// scratch tensors allocated once (the buffer plan) and reused.
type Runner struct {
	M     *Model
	E     graph.Executor
	Trace *Trace
	// Prefetch predicts each next MoE layer's experts during decode and
	// starts loading them early (when the experts are paged).
	Prefetch bool

	scratch map[string]*graph.Tensor
	routes  map[int]*graph.Routes
}

// NewRunner prepares m to run on e.
func NewRunner(m *Model, e graph.Executor) *Runner {
	return &Runner{M: m, E: e, scratch: map[string]*graph.Tensor{}, routes: map[int]*graph.Routes{}}
}

// run is the state of one forward pass over a batch of n tokens.
type run struct {
	*Runner
	n     int
	pos0  int
	pos   []int32
	layer int
}

// tensor returns the runner's scratch tensor called name with cols columns
// and MaxBatch rows, allocating it on first use.
func (r *run) tensor(name string, cols int) *graph.Tensor {
	return r.tensorRows(name, r.M.MaxBatch, cols)
}

// tensorRows is tensor for a scratch tensor of a given number of rows.
func (r *run) tensorRows(name string, rows, cols int) *graph.Tensor {
	t, ok := r.scratch[name]
	if !ok || t.Cols != cols || t.Rows != rows {
		t = r.E.NewTensor(rows, cols)
		r.scratch[name] = t
	}
	return t
}

func (r *run) routesFor(layer, topK int) *graph.Routes {
	rt, ok := r.routes[layer]
	if !ok {
		rt = &graph.Routes{TopK: topK, IDs: make([]int32, r.M.MaxBatch*topK), Weights: make([]float32, r.M.MaxBatch*topK)}
		r.routes[layer] = rt
	}
	return rt
}

// Forward appends ids to the sequence in c and returns the logits: of every
// new position ([len(ids)*vocab]) when all is set, else of the last one.
// Prompts longer than MaxBatch are processed in chunks.
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
	return out, nil
}

func (rn *Runner) forwardChunk(c *Cache, ids []int32, wantLogits, lastOnly bool) ([]float32, error) {
	m, e := rn.M, rn.E
	n := len(ids)
	r := &run{Runner: rn, n: n, pos0: c.Len, pos: make([]int32, n)}
	for i := range r.pos {
		r.pos[i] = int32(c.Len + i)
	}
	if c.Len == 0 {
		// A new sequence: recurrent state left by an earlier one (a cache
		// reused by a session, or one a failed pass stopped in the middle
		// of) must not leak into it. Per-position caches need nothing.
		for _, s := range c.States {
			if rs, ok := s.(interface{ Reset(graph.Executor) }); ok {
				rs.Reset(e)
			}
		}
	}
	hidden := m.Config.HiddenSize
	x := r.tensor("x", hidden)
	h := r.tensor("h", hidden)
	y := r.tensor("y", hidden)
	e.Embed(x, m.Embed, ids)
	eps := float32(m.Config.RMSNormEps)
	for l, layer := range m.Layers {
		r.layer = l
		e.RMSNorm(h, x, n, hidden, layer.InputNorm, eps)
		if err := layer.Mixer.forward(r, y, h, c.States[l]); err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
		e.Add(x, x, y, n)
		e.RMSNorm(h, x, n, hidden, layer.PostNorm, eps)
		if err := layer.FFN.forward(r, y, h); err != nil {
			return nil, fmt.Errorf("layer %d: %w", l, err)
		}
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
	rows, src := n, x
	if lastOnly {
		// Only the last position's logits are needed: normalise one row.
		last := r.tensor("last", hidden)
		e.CopyCols(last, 0, 0, x, n-1, 0, 1, hidden)
		rows, src = 1, last
	}
	e.RMSNorm(h, src, rows, hidden, m.Norm, eps)
	// The vocabulary is wide (152k for Qwen): keep a one-row tensor for
	// decode and a full batch only when every position's logits are asked.
	name, logitRows := "logits", m.MaxBatch
	if rows == 1 {
		name, logitRows = "logits.last", 1
	}
	logits := r.tensorRows(name, logitRows, m.Config.VocabSize)
	e.MatMul(logits, h, rows, m.Head, nil)
	if err := e.Sync(); err != nil {
		return nil, err
	}
	out := make([]float32, rows*m.Config.VocabSize)
	copy(out, e.Read(logits))
	return out, nil
}

// CacheBytes is the memory a cache of maxLen positions takes.
func (m *Model) CacheBytes(maxLen int) int64 {
	var total int64
	for _, l := range m.Layers {
		if s, ok := l.Mixer.(interface{ StateBytes(maxLen int) int64 }); ok {
			total += s.StateBytes(maxLen)
		}
	}
	return total
}
