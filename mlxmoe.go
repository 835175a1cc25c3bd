// Package mlxmoe is the library API of mlx-moe: load a Mixture-of-Experts
// checkpoint and generate from it.
//
//	m, err := mlxmoe.Load("path/to/model", mlxmoe.Options{})
//	res, err := m.Generate(ctx, "def quicksort(arr):", mlxmoe.GenerateOptions{MaxTokens: 64})
//
// Stream delivers tokens as they are produced (text is complete UTF-8 only);
// a Session keeps the cache between calls so a prompt that extends an
// earlier one only processes its new tokens. A Model is safe for use from
// many goroutines: concurrent generations run together, batched in one
// forward pass per step (Options.Parallel).
package mlxmoe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/mlx-moe/mlx-moe/chat"
	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/hub"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/metal"
	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/sample"
	"github.com/mlx-moe/mlx-moe/tokenizer"
)

// Options configure Load.
type Options struct {
	// ContextLength is the most positions a sequence may hold (default: the
	// model's max_position_embeddings, bounded by what the memory budget
	// leaves next to the fewest expert slots a token needs).
	ContextLength int
	// KVBits is how the KV cache stores keys and values: 16 (the default,
	// 0) half precision, 8 or 4 MLX-style affine quantization per group of
	// 64, 32 float32. Executors without compact caches (Metal for now)
	// keep float32.
	KVBits int
	// FloatActivations keeps the decode kernels' activations in float32
	// (exact up to summation order). By default the CPU's quantized decode
	// products quantize them to int16 per group where it has the integer
	// kernels (AVX2: 2- to 8-bit; NEON: 4- and 8-bit): faster, for about
	// 1e-5 nats of held-out NLL
	// (kernels.Int16Activations, which this sets for the whole process).
	FloatActivations bool
	// Int8Experts quantizes the routed experts' gate and up inputs to int8
	// instead (cpu.Executor.Int8Experts): faster again (BENCHMARKS.md,
	// "Int8 row kernels"), for about 5e-5 nats of held-out NLL, but int8's
	// coarser rounding turns float32 reordering elsewhere into visible
	// logit differences: a prompt prefilled in other chunks (next to other
	// streams) gets logits up to 1e-2 apart on the test fixtures, where
	// int16 keeps them within 1e-3. Ignored with FloatActivations.
	Int8Experts bool
	// Device is "cpu", "metal", or "" for Metal when available, else CPU.
	Device string
	// Experts choose how routed experts are held (resident, paged, mapped).
	Experts ExpertOptions
	// PromptCacheBytes bounds the memory of cached prompt states (0:
	// DefaultPromptCacheBytes; negative: keep no snapshots).
	PromptCacheBytes int64
	// PromptCacheDir, if set, keeps the prompt states taken where system
	// prompts and tools end on disk: they are saved as they are made and
	// loaded (those of this model, weights, config and chat template) by
	// the next Load.
	PromptCacheDir string
	// Log receives notes about loading (nil: discarded).
	Log io.Writer
	// Download lets Load fetch a model named by a Hugging Face hub id
	// (ORG/NAME[@rev]) that is not in the Hugging Face cache yet.
	Download bool
	// Hub is the client for hub ids (nil: configured from the environment,
	// HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE, ...). Set its Progress to
	// see a download.
	Hub *hub.Client
	// Parallel is how many generations advance together (default 4), as
	// far as their caches fit the memory budget; more wait their turn.
	Parallel int
	// PrefillChunk bounds the prompt tokens one scheduler step processes
	// next to the running streams' decode tokens (default: a forward
	// pass's worth, 256 tokens, and up to 2,048 on a paged model, where
	// every chunk of a long prompt reads nearly all the experts): smaller
	// keeps their inter-token gaps shorter while a long prompt prefills,
	// larger prefills faster.
	PrefillChunk int
	// PrefillPace, when above 1, sizes the prefill chunk while other
	// sequences decode so that a step takes at most this many times a step
	// of their decode tokens alone (serve's default, 2, keeps a stream's
	// inter-token gap within about 3x its solo value while a long prompt
	// prefills, by CPU time: the budget is against the decode step next to
	// the prompt, which its cache traffic slows; when not even one prompt
	// token fits, its chunk runs some of the layers a step).
	// Without it (0) a prompt is split the same way whatever else runs, so
	// a generation's logits do not depend on its neighbours; paced, the
	// split follows the timing and the logits vary in their last bits.
	PrefillPace float64
}

// Model is a loaded model with its tokenizer. It is safe for concurrent
// use: generations from many goroutines are scheduled together.
type Model struct {
	Name  string
	Dir   string
	Model *model.Model
	Tok   *tokenizer.Tokenizer
	// Template is the model's chat template (a plain fallback if it has none).
	Template *chat.Template
	exec     graph.Executor
	runner   *model.Runner
	ctxLen   int
	eos      map[int32]bool

	pager     *experts.Pager
	closeMaps func() error
	opts      Options

	// mu is held by each scheduler step: it guards the runner, the caches
	// and the sessions' state. laneFree is signalled when a generation
	// ends.
	mu       sync.Mutex
	laneFree *sync.Cond
	sched    scheduler
	seqs     int      // sequences that run at once
	session  *Session // the default session used by Stream and Generate
}

// Load reads a model directory (config.json, safetensors, tokenizer files),
// or a Hugging Face hub id (ORG/NAME[@rev]) from the Hugging Face cache (see
// ResolveModel and Options.Download).
func Load(dir string, opts Options) (*Model, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	dir, err := ResolveModel(dir, opts)
	if err != nil {
		return nil, err
	}
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	kvf, err := kernels.KVFormatBits(opts.KVBits)
	if err != nil {
		return nil, err
	}
	kernels.Int16Activations = !opts.FloatActivations
	e, err := NewExecutor(opts.Device, opts.Log)
	if err != nil {
		return nil, err
	}
	if c, ok := e.(*cpu.Executor); ok {
		c.Int8Experts = opts.Int8Experts && !opts.FloatActivations
	}
	if kvf != kernels.KVF32 && !storesKV(e, kvf) {
		fmt.Fprintf(opts.Log, "note: the %s executor keeps the KV cache in float32 (--kv-bits %d needs the CPU executor for now)\n", e.Name(), opts.KVBits)
		kvf = kernels.KVF32
	}
	if opts.PrefillPace != 0 && !(opts.PrefillPace > 1) {
		return nil, fmt.Errorf("Options.PrefillPace is %v; it must be 0 (off) or above 1", opts.PrefillPace)
	}
	if opts.PrefillChunk < 0 {
		return nil, fmt.Errorf("Options.PrefillChunk is %d; it must be at least 1 (0: the default)", opts.PrefillChunk)
	}
	if opts.Parallel < 0 {
		return nil, fmt.Errorf("Options.Parallel is %d; it must be at least 1 (0: %d)", opts.Parallel, defaultParallel)
	}
	if opts.Parallel == 0 {
		opts.Parallel = defaultParallel
	}
	ctx := &contextPlan{Asked: opts.ContextLength, Format: kvf, Parallel: opts.Parallel}
	eo := opts.Experts
	if sa, ok := e.(slotAllocating); ok {
		// Slots in the device's buffers: the expert kernels read them in
		// place.
		eo.allocator = sa.SlotAllocator()
	}
	if ba, ok := e.(graph.BufferAllocator); ok {
		// Dense weights are read straight into the device's buffers, so
		// they are bound in place rather than copied a second time.
		eo.buffers = ba
	}
	if ws, ok := e.(workingSetSized); ok && eo.Memory == 0 && ws.WorkingSetBytes() > 0 {
		// The device's working set bounds the budget.
		eo.Memory = ws.WorkingSetBytes()
	}
	mdl, pager, closeMaps, err := loadModel(dir, eo, ctx, ctx.estimate(cfg), opts.Log)
	if err != nil {
		return nil, err
	}
	ctx.print(mdl, opts.Log)
	ctxLen := ctx.Len
	m := &Model{Name: experts.ModelName(dir), Dir: dir, Model: mdl, exec: e,
		runner: model.NewRunner(mdl, e), ctxLen: ctxLen, eos: map[int32]bool{},
		pager: pager, closeMaps: closeMaps, opts: opts, seqs: max(1, min(ctx.Seqs, mdl.MaxBatch-1))}
	m.laneFree = sync.NewCond(&m.mu)
	if m.Tok, err = tokenizer.Load(dir); err != nil {
		m.release()
		return nil, err
	}
	if m.Template, err = chat.LoadTemplate(dir); err != nil {
		m.release()
		return nil, err
	}
	m.Template.Notes = opts.Log
	for _, n := range mdl.Notes {
		fmt.Fprintf(opts.Log, "note: %s\n", n)
	}
	// The prediction is read on the host, which would cost a device round
	// trip per layer where ops are encoded: prefetch only where they run as
	// issued.
	im, ok := e.(immediate)
	m.runner.Prefetch = opts.Experts.Prefetch && pager != nil && ok && im.Immediate()
	for _, id := range m.Tok.EOSTokenIDs() {
		m.eos[int32(id)] = true
	}
	m.session = m.NewSession()
	if opts.PromptCacheDir != "" {
		m.session.loadPrompts()
	}
	return m, nil
}

// NewExecutor picks the device: "metal", "cpu", or "" for Metal when
// available, else the CPU. When Metal is asked for but this machine has no
// usable Metal device, it says why on log and returns the CPU executor; any
// other failure (a shader the compiler rejects) is an error, not a silent
// fallback.
func NewExecutor(device string, log io.Writer) (graph.Executor, error) {
	switch device {
	case "", "auto":
		if ok, _ := metal.Available(); ok {
			return metal.New()
		}
		return cpu.New(), nil
	case "cpu":
		return cpu.New(), nil
	case "metal":
		e, err := metal.New()
		if errors.Is(err, metal.ErrNotAvailable) {
			fmt.Fprintf(log, "%v; running on the CPU instead\n", err)
			return cpu.New(), nil
		}
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	return nil, fmt.Errorf("device %q is not known (cpu or metal)", device)
}

// Close saves the pager's warm-start state and releases the model files.
func (m *Model) Close() error {
	if m.pager != nil && !m.opts.Experts.NoWarmStart {
		if path, err := experts.WarmPath(m.opts.Experts.CacheDir, m.Name); err == nil {
			if err := m.pager.SaveWarm(path, m.Name); err != nil {
				fmt.Fprintf(m.opts.Log, "experts: could not save the warm-start state: %v\n", err)
			}
		}
	}
	return m.release()
}

// release closes the pager, the memory maps and the checkpoint.
func (m *Model) release() error {
	if m.session != nil {
		m.session.free()
	}
	if m.runner != nil {
		m.runner.Free()
	}
	var errs []error
	if m.pager != nil {
		errs = append(errs, m.pager.Close())
	}
	if m.closeMaps != nil {
		errs = append(errs, m.closeMaps())
	}
	errs = append(errs, m.Model.Close())
	return errors.Join(errs...)
}

// ExpertStats returns the pager's counters (ok is false without a pager).
func (m *Model) ExpertStats() (s experts.Stats, ok bool) {
	if m.pager == nil {
		return experts.Stats{}, false
	}
	return m.pager.Stats(), true
}

// ContextLength is the most positions a sequence may hold.
func (m *Model) ContextLength() int { return m.ctxLen }

// Encode tokenizes text as the model's tokenizer does for a prompt
// (including any BOS token its post-processor adds).
func (m *Model) Encode(text string) []int32 {
	ids := m.Tok.EncodeWithSpecialTokens(text)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// EncodeChat tokenizes a rendered chat prompt: the template already wrote
// any BOS token, so none is added (as apply_chat_template does).
func (m *Model) EncodeChat(text string) []int32 {
	ids := m.Tok.Encode(text)
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

// ChatPrompt renders messages with the model's chat template, ending with
// the assistant's turn, and tokenizes the result.
func (m *Model) ChatPrompt(messages []chat.Message, tools []json.RawMessage, kwargs map[string]any) (string, []int32, error) {
	text, err := m.Template.Render(messages, tools, true, kwargs)
	if err != nil {
		return "", nil, err
	}
	return text, m.EncodeChat(text), nil
}

// GenerateOptions control one generation.
type GenerateOptions struct {
	// MaxTokens is the most new tokens (default 256).
	MaxTokens int
	Sampling  sample.Options
	// IgnoreEOS keeps generating past end-of-sequence tokens.
	IgnoreEOS bool
	// Logprobs reports each generated token's log-probability under the
	// model (Token.Logprob), and TopLogprobs the most likely alternatives
	// at each step (Token.Top).
	Logprobs    bool
	TopLogprobs int
	// LogitsMask, if set, sees each step's logits before sampling, with
	// the tokens generated so far, and may lower any of them (to -Inf to
	// forbid a token): the hook for constrained decoding.
	LogitsMask func(generated []int32, logits []float32)
	// CachePoints are prompt lengths at which to keep the cache state for
	// later prompts that share that prefix, e.g. where the system prompt
	// and tool definitions end.
	CachePoints []int
}

// Token is one generated token and the text it completes (possibly empty
// while a multi-byte character is incomplete).
type Token struct {
	ID   int32
	Text string
	// Logprob and Top are set when GenerateOptions.Logprobs is.
	Logprob float32
	Top     []Alternative
}

// Result describes a finished generation.
type Result struct {
	IDs          []int32
	Text         string
	PromptTokens int
	// CachedTokens is how many prompt tokens were reused from an earlier
	// call instead of being processed again.
	CachedTokens int
	// FinishReason is "stop" (end-of-sequence token), "length" (MaxTokens
	// or the context) or "cancelled".
	FinishReason string
	Prefill      time.Duration // time to first token (Queued included)
	Decode       time.Duration
	// Queued is how long the generation waited for its turn (other
	// sequences filling every place in the batch).
	Queued time.Duration
}

// DecodeTokensPerSecond is the decode speed of the generation.
func (r Result) DecodeTokensPerSecond() float64 {
	if r.Decode <= 0 || len(r.IDs) < 2 {
		return 0
	}
	return float64(len(r.IDs)-1) / r.Decode.Seconds()
}

// Generate encodes prompt and generates a completion.
func (m *Model) Generate(ctx context.Context, prompt string, opts GenerateOptions) (Result, error) {
	return m.Stream(ctx, m.Encode(prompt), opts, nil)
}

// Stream generates from prompt ids, calling emit (if not nil) for each new
// token; an error from emit stops generation and is returned. It uses the
// model's default session, so calls reuse a shared prefix; calls from
// several goroutines run together.
func (m *Model) Stream(ctx context.Context, prompt []int32, opts GenerateOptions, emit func(Token) error) (Result, error) {
	return m.session.Stream(ctx, prompt, opts, emit)
}

// Logits returns the logits at the last position of ids (a fresh sequence).
func (m *Model) Logits(ids []int32) ([]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.Model.NewCache(m.exec, len(ids))
	defer c.Free(m.exec)
	logits, err := m.forward(c, ids, false)
	return slices.Clone(logits), err
}

// MeanNLL is the mean negative log-likelihood of ids[1:] given their
// prefixes, from one prefill pass.
func (m *Model) MeanNLL(ids []int32) (float64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runner.MeanNLL(ids)
}

// ErrContextLength is returned when prompt plus generation cannot fit.
var ErrContextLength = errors.New("context length exceeded")

func (m *Model) checkIDs(prompt []int32) error {
	if len(prompt) == 0 {
		return fmt.Errorf("empty prompt")
	}
	if len(prompt) >= m.ctxLen {
		return fmt.Errorf("%w: prompt of %d tokens, context is %d", ErrContextLength, len(prompt), m.ctxLen)
	}
	vocab := int32(m.Model.Config.VocabSize)
	for _, id := range prompt {
		if id < 0 || id >= vocab {
			return fmt.Errorf("token id %d is outside the vocabulary (0..%d)", id, vocab-1)
		}
	}
	return nil
}

// storesKV reports whether e keeps KV caches in format f: it is a
// graph.KVExecutor and makes a one-row cache of that format (an executor
// may have kernels for some formats only).
func storesKV(e graph.Executor, f kernels.KVFormat) bool {
	ke, ok := e.(graph.KVExecutor)
	if !ok {
		return false
	}
	c, err := ke.NewKV(1, kernels.KVGroupSize, f, kernels.KVGroupSize)
	if err != nil {
		return false
	}
	ke.FreeKV(c)
	return true
}
