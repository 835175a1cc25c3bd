package model

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// family builds a model from its config and weights.
type family func(w *weights) *Model

var families = map[string]family{}

func register(modelType string, f family) { families[modelType] = f }

// SupportedTypes lists the model_type values that can be loaded.
func SupportedTypes() []string {
	names := make([]string, 0, len(families))
	for n := range families {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Model is a loaded model: its weights and layer stack.
type Model struct {
	Config *Config
	Index  *Index
	Embed  *kernels.Matrix
	Layers []*Layer
	Norm   []float32
	Head   *kernels.Matrix
	// LayerNorm: the per-layer and final norms are LayerNorms with the
	// *NormBias biases (PhiMoE), not RMSNorms. HeadBias is the output
	// head's bias (nil: none).
	LayerNorm bool
	NormBias  []float32
	HeadBias  []float32
	// RopeSwitch > 0 (LongRoPE): a pass that ends a sequence longer than
	// RopeSwitch rotates by the long table, else by the short one, and the
	// cached positions are recomputed when a pass needs the other table
	// than they were made with, as transformers' generate does.
	RopeSwitch int

	// Notes are things a user should know about how the checkpoint was read
	// (for example, weights that were skipped).
	Notes []string

	offHeap [][]byte // weight buffers outside the Go heap, from buffers
	buffers graph.BufferAllocator

	// EmbedScale and ResidualScale, when not 0, multiply the embedding
	// and each block's output before it joins the residual stream (the
	// Granite families' multipliers; see scaleRows).
	EmbedScale, ResidualScale float32

	// MaxBatch is how many tokens one forward pass processes at most;
	// longer prompts are processed in chunks of this size.
	MaxBatch int

	// KVFormat is how new caches store keys and values on executors that
	// implement graph.KVExecutor (others keep float32). The zero value is
	// float32; the library defaults to half precision.
	KVFormat kernels.KVFormat
}

// Layer is one decoder block: x += Mixer(norm1(x)); x += FFN(norm2(x)).
type Layer struct {
	InputNorm, PostNorm []float32
	// InputNormBias, PostNormBias: the LayerNorm biases (Model.LayerNorm).
	InputNormBias, PostNormBias []float32
	Mixer                       Mixer
	FFN                         FFN
}

// Mixer mixes information across positions (attention, linear attention).
type Mixer interface {
	// StateBytes is the size of this layer's cache for maxLen positions
	// with KV caches in format f.
	StateBytes(maxLen int, f kernels.KVFormat) int64
	// newState allocates this layer's part of the cache (KV caches in
	// format f when e stores it, else float32).
	newState(e graph.Executor, maxLen int, f kernels.KVFormat) MixerState
	// plan asks for the scratch tensors forward uses (see Runner).
	plan(s *scratch)
	// forward mixes one sequence's rows: r.n rows of x at positions r.pos
	// (r.pos0, r.pos0+1, ...) into out, with st that sequence's state. In a
	// batched pass it runs once per segment on views of its rows (r.segs
	// then holds that segment alone), unless the mixer is a segmentMixer,
	// which takes the whole pass at once.
	forward(r *run, out, x *graph.Tensor, st MixerState) error
}

// MixerState is what a mixer keeps across tokens (KV cache, recurrent
// state).
type MixerState interface {
	// CopyFrom makes the first positions positions equal to other's.
	CopyFrom(other MixerState, e graph.Executor, positions int)
	// PerPosition reports whether the state is kept per position (a KV
	// cache), so that lowering Cache.Len rewinds it; recurrent state is not.
	PerPosition() bool
	// Reset prepares the state for a new sequence (recurrent state starts
	// at zero; a KV cache needs nothing).
	Reset(e graph.Executor)
	// Free releases the state's tensors on e.
	Free(e graph.Executor)
	// Bytes is the memory the state's tensors hold.
	Bytes() int64
}

// FFN is the per-token feed-forward part (dense MLP or MoE).
type FFN interface {
	// plan asks for the scratch tensors forward uses (see Runner).
	plan(s *scratch)
	forward(r *run, out, x *graph.Tensor) error
}

// LoadOptions change how a checkpoint is read.
type LoadOptions struct {
	// LazyExperts leaves routed experts on disk: each MoE layer gets an
	// ExpertSource describing them, to be replaced with AttachExperts.
	LazyExperts bool
	// Buffers holds the large weights: the executor the model will run on,
	// when it is a graph.BufferAllocator, so its kernels read them in
	// place. Nil means host memory outside the Go heap.
	Buffers graph.BufferAllocator
}

// Load reads dir/config.json and the safetensors in dir, every weight into
// memory.
func Load(dir string) (*Model, error) { return LoadWith(dir, LoadOptions{}) }

// LoadWith is Load with options.
func LoadWith(dir string, opts LoadOptions) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	f, ok := families[cfg.ModelType]
	if !ok {
		return nil, fmt.Errorf("%s: model_type %q is not supported (supported: %s)", cfg.Path, cfg.ModelType, strings.Join(SupportedTypes(), ", "))
	}
	ix, err := OpenIndex(dir)
	if err != nil {
		return nil, err
	}
	buffers := opts.Buffers
	if buffers == nil {
		buffers = hostBuffers{}
	}
	w := &weights{ix: ix, cfg: cfg, lazy: opts.LazyExperts, buffers: buffers}
	m := f(w)
	if w.err != nil {
		freeAll(buffers, w.offHeap)
		ix.Close()
		return nil, w.err
	}
	m.Config, m.Index, m.offHeap, m.buffers = cfg, ix, w.offHeap, buffers
	var prev *MoE
	for _, l := range m.Layers {
		if moe, ok := l.FFN.(*MoE); ok {
			if prev != nil {
				prev.Next = moe
			}
			prev = moe
		}
	}
	vision := 0
	for _, n := range ix.Names() {
		if strings.Contains(n, "visual.") || strings.Contains(n, "vision_tower.") {
			vision++
		}
	}
	if vision > 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("ignoring %d vision tensors: only the language model runs", vision))
	}
	if m.MaxBatch == 0 {
		m.MaxBatch = 256
	}
	return m, nil
}

// loadCommon reads the embedding, final norm and output head shared by all
// families.
func loadCommon(w *weights, p string) *Model {
	c := w.cfg
	m := &Model{}
	m.Embed = w.linear(p+"embed_tokens", c.VocabSize, c.HiddenSize)
	m.Norm = w.vector(p+"norm.weight", c.HiddenSize)
	m.Head = loadHead(w, p, m.Embed)
	return m
}

// loadHead reads the output head, or returns embed when the embeddings
// are tied (or the checkpoint has no lm_head).
func loadHead(w *weights, p string, embed *kernels.Matrix) *kernels.Matrix {
	c := w.cfg
	head := headName(w, p)
	if c.TieWordEmbeddings || !w.has(head+".weight") {
		return embed
	}
	return w.linear(head, c.VocabSize, c.HiddenSize)
}

// headName is the output head's module name for the model prefix p
// ("lm_head", or a multimodal checkpoint's "language_model.lm_head").
func headName(w *weights, p string) string {
	head := strings.TrimSuffix(p, "model.") + "lm_head"
	if !w.has(head + ".weight") {
		head = "lm_head"
	}
	return head
}

// Close releases the checkpoint files and the weights held outside the Go
// heap; the model must not run afterwards.
func (m *Model) Close() error {
	freeAll(m.buffers, m.offHeap)
	m.offHeap = nil
	return m.Index.Close()
}

func freeAll(a graph.BufferAllocator, bufs [][]byte) {
	for _, b := range bufs {
		a.FreeBuffer(b)
	}
}

// ExpertSources lists the MoE layers whose experts were loaded lazily.
func (m *Model) ExpertSources() []*ExpertSource {
	var out []*ExpertSource
	for _, l := range m.Layers {
		if moe, ok := l.FFN.(*MoE); ok {
			if src, ok := moe.Experts.(*ExpertSource); ok {
				out = append(out, src)
			}
		}
	}
	return out
}

// AttachExperts makes set supply the routed experts of decoder layer l.
func (m *Model) AttachExperts(l int, set graph.ExpertSet) error {
	moe, ok := m.Layers[l].FFN.(*MoE)
	if !ok {
		return fmt.Errorf("layer %d has no routed experts", l)
	}
	if src, ok := moe.Experts.(*ExpertSource); ok {
		moe.source = src
	}
	moe.Experts = set
	return nil
}

// ResidentBytes is the size of the weights held in memory: the checkpoint
// less the lazily loaded experts (whose extents cover their tensors).
func (m *Model) ResidentBytes() int64 {
	var total int64
	for _, n := range m.Index.Names() {
		t, _ := m.Index.Tensor(n)
		total += t.Length
	}
	for _, l := range m.Layers {
		moe, ok := l.FFN.(*MoE)
		if !ok {
			continue
		}
		src, ok := moe.Experts.(*ExpertSource)
		if !ok {
			src = moe.source // attached to a pager: not resident either
		}
		if src == nil {
			continue
		}
		for e := 0; e < src.Count; e++ {
			for _, x := range src.Extents(e) {
				total -= x.Length
			}
		}
	}
	return total
}
