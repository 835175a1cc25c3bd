package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/model"
)

// defaultModelHelp ends the --model help of commands that load a model.
var defaultModelHelp = " (default: the embedded " + defaultmodel.Name + ")"

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	dir        string
	noDownload bool // --no-download: a hub id must already be cached
	device     string
	context    int
	kvBits     int
	floatActs  bool // --float-activations
	int8Exps   bool // --int8-experts
	memory     string
	experts    mlxmoe.ExpertOptions
	// promptCacheBytes bounds cached prompt states (serve's --prompt-cache-mb),
	// promptCacheDir keeps them on disk (serve's --prompt-cache).
	promptCacheBytes int64
	promptCacheDir   string
	// parallel is how many generations run together (serve's --parallel;
	// 0: one, the other commands run one sequence); prefillChunk and
	// prefillPace shape the prefill next to them (serve's --prefill-chunk,
	// --prefill-pace).
	parallel     int
	prefillChunk int
	prefillPace  float64
}

func (f *modelFlags) register(fs *flag.FlagSet, defaultHelp string) {
	fs.StringVar(&f.dir, "model", "", "model directory (config.json, *.safetensors, tokenizer.json), or a Hugging Face hub id ORG/NAME[@REV], downloaded on first use; may also be the first argument"+defaultHelp)
	fs.BoolVar(&f.noDownload, "no-download", false, "fail instead of downloading a hub model (ORG/NAME) that is not in the Hugging Face cache")
	fs.StringVar(&f.device, "device", "", "cpu or metal (default: metal on Apple silicon, else cpu)")
	fs.IntVar(&f.context, "context", 0, "context length in tokens (default: the model's, bounded by what the memory budget leaves next to the fewest expert slots)")
	fs.IntVar(&f.kvBits, "kv-bits", 16, "KV cache precision: 16 (half), 8 or 4 (affine quantization per group of 64, as MLX's QuantizedKVCache), 32 (float32)")
	fs.BoolVar(&f.floatActs, "float-activations", false, "keep decode activations in float32 (exact; default: int16 per group on CPUs with the integer kernels, about 1e-5 nats of NLL, faster)")
	fs.BoolVar(&f.int8Exps, "int8-experts", false, "quantize the routed experts' gate/up decode inputs to int8 (faster than int16, about 5e-5 nats of NLL; logits of batched prompts move by up to 1e-2 on the test fixtures)")
	fs.StringVar(&f.memory, "memory", "", "memory budget for weights, experts and cache, e.g. 12GB (default: from available RAM)")
	fs.IntVar(&f.experts.Capacity, "capacity", 0, "expert slots per MoE layer (default: from the memory budget)")
	fs.StringVar(&f.experts.Policy, "policy", "", "expert miss policy: exact (page in, output identical), fast (skip misses, renormalise), os (memory-map), resident (default: resident if the model fits, else exact)")
	fs.StringVar(&f.experts.Profile, "profile", "", "expert profile JSON to fill and pin slots from (default: one for the model in DIR/profiles or in the install's profiles/)")
	fs.IntVar(&f.experts.Pin, "pin", 0, "pin the profile's N most used experts of each layer")
	fs.BoolVar(&f.experts.DirectIO, "direct-io", false, "read experts with O_DIRECT so the page cache keeps no second copy")
	fs.BoolVar(&f.experts.Prefetch, "prefetch", true, "when paging on the CPU, predict the next layer's experts during decode and start loading them early, and run resident experts while misses load")
	fs.BoolVar(&f.experts.NoWarmStart, "no-warm-start", false, "neither restore nor save the resident expert set")
	fs.StringVar(&f.experts.CacheDir, "cache-dir", "", "where the warm-start state lives (default $XDG_CACHE_HOME or ~/.cache)")
}

// maxContext bounds --context: more positions than any model is trained
// for, and small enough that cache sizes cannot overflow.
const maxContext = 1 << 30

// load checks the flags against the model's config, then opens the model:
// --model, or the embedded default model without it.
func (f *modelFlags) load(stderr io.Writer) (*mlxmoe.Model, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	dir, err := f.resolve(stderr)
	if err != nil {
		return nil, err
	}
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	if err := f.checkAgainst(cfg, stderr); err != nil {
		return nil, err
	}
	asked := f.experts.Profile != "" || f.experts.Pin > 0
	if f.experts.Profile == "" {
		f.experts.Profile = findProfile(dir)
	}
	m, err := mlxmoe.Load(dir, mlxmoe.Options{ContextLength: f.context, KVBits: f.kvBits, FloatActivations: f.floatActs, Int8Experts: f.int8Exps, Device: f.device, Experts: f.experts,
		PromptCacheBytes: f.promptCacheBytes, PromptCacheDir: f.promptCacheDir, Log: stderr,
		Parallel: max(1, f.parallel), PrefillChunk: f.prefillChunk, PrefillPace: f.prefillPace})
	if err != nil {
		return nil, err
	}
	if err := f.checkLoaded(m, asked, stderr); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// check validates the flags that need no model, as the server validates
// the same values in a request.
func (f *modelFlags) check() error {
	switch {
	case f.context < 0 || f.context > maxContext:
		return fmt.Errorf("--context %d: expected a number of tokens from 1 to %d (0: the model's)", f.context, maxContext)
	case f.kvBits != 32 && f.kvBits != 16 && f.kvBits != 8 && f.kvBits != 4:
		return fmt.Errorf("--kv-bits %d: expected 16, 8 or 4 (32 for float32)", f.kvBits)
	case f.experts.Capacity < 0:
		return fmt.Errorf("--capacity %d: expected a positive number of expert slots per layer (0: from the memory budget)", f.experts.Capacity)
	case f.experts.Pin < 0:
		return fmt.Errorf("--pin %d: expected a positive number of experts per layer (0: none)", f.experts.Pin)
	}
	switch f.device {
	case "", "auto", "cpu", "metal":
	default:
		return fmt.Errorf("--device %q: expected cpu or metal", f.device)
	}
	if p := f.experts.Policy; p != "" && p != "resident" {
		if _, err := experts.ParsePolicy(p); err != nil {
			return fmt.Errorf("--policy %q: expected exact, fast, os or resident", p)
		}
	}
	if f.memory != "" {
		n, err := experts.ParseBytes(f.memory)
		if err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		if n <= 0 {
			return fmt.Errorf("--memory %s: expected a positive size", f.memory)
		}
		f.experts.Memory = n
	}
	if f.experts.Profile != "" {
		if _, err := os.Stat(f.experts.Profile); err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
	}
	return nil
}

// checkAgainst validates the flags that depend on the model's config.
func (f *modelFlags) checkAgainst(cfg *model.Config, stderr io.Writer) error {
	if k := cfg.NumExpertsPerTok; f.experts.Capacity > 0 && cfg.NumExperts > 0 && f.experts.Capacity < k {
		return fmt.Errorf("--capacity %d is below the model's top-k: every token routes to %d experts per layer (num_experts_per_tok), so each layer needs at least %d slots",
			f.experts.Capacity, k, k)
	}
	if trained := cfg.MaxPositions; f.context > trained && trained > 0 {
		fmt.Fprintf(stderr, "warning: --context %d exceeds the %d positions the model was trained for (max_position_embeddings); expect its output to degrade past %d tokens\n",
			f.context, trained, trained)
	}
	return nil
}

// checkLoaded warns when --profile or --pin were asked for and the model
// cannot use them, and checks that the cache for --context fits the memory
// budget before it is allocated.
func (f *modelFlags) checkLoaded(m *mlxmoe.Model, asked bool, stderr io.Writer) error {
	if _, paged := m.ExpertStats(); !paged && asked {
		fmt.Fprintf(stderr, "warning: every expert is resident, so --profile and --pin have no effect (page experts with --policy exact or --capacity N)\n")
	}
	if f.context == 0 {
		return nil
	}
	budget, source := f.experts.Memory, "--memory"
	if budget == 0 {
		var err error
		if budget, source, err = experts.AutoBudget(); err != nil {
			return nil // no figure to compare with; the allocation decides
		}
	}
	if need := m.Model.CacheBytes(f.context); need > budget {
		return fmt.Errorf("--context %d: the cache for %d positions takes %s, more than the memory budget of %s (%s)",
			f.context, f.context, experts.FormatBytes(need), experts.FormatBytes(budget), source)
	}
	return nil
}

// modelDir returns the directory --model names: the embedded default model
// (unpacked on first use) when it is empty, else dir or the Hugging Face
// cache snapshot of ORG/NAME.
func modelDir(dir string) (string, error) {
	if dir != "" {
		return localModelDir(dir)
	}
	cache, err := defaultmodel.CacheDir()
	if err == nil {
		dir, err = defaultmodel.Dir(cache)
	}
	if err != nil {
		return "", fmt.Errorf("without --model the embedded %s is used, which must first be unpacked into the cache directory ($XDG_CACHE_HOME or ~/.cache), and that failed: %w; make it writable or pass --model DIR",
			defaultmodel.Name, err)
	}
	return dir, nil
}

// findProfile looks for an expert profile of the model in dir/profiles,
// then in the profiles shipped with the installed binary (next to it, or
// in ../share/mlx-moe/profiles), and returns "" when there is none. The
// working directory is never searched: what runs should not depend on
// where it was started.
func findProfile(dir string) string {
	dirs := []string{filepath.Join(dir, "profiles")}
	if exe, err := os.Executable(); err == nil {
		bin := filepath.Dir(exe)
		dirs = append(dirs, filepath.Join(bin, "profiles"), filepath.Join(bin, "..", "profiles"), filepath.Join(bin, "..", "share", "mlx-moe", "profiles"))
	}
	name := experts.ModelName(dir)
	for _, d := range dirs {
		if path, err := experts.FindProfile(d, name); err == nil && path != "" {
			return path
		}
	}
	return ""
}
