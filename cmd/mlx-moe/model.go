package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/experts"
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	dir     string
	device  string
	context int
	memory  string
	experts mlxmoe.ExpertOptions
}

func (f *modelFlags) register(fs *flag.FlagSet, defaultHelp string) {
	fs.StringVar(&f.dir, "model", "", "model directory (config.json, *.safetensors, tokenizer.json), or ORG/NAME from the Hugging Face cache"+defaultHelp)
	fs.StringVar(&f.device, "device", "", "cpu or metal (default: metal on Apple silicon, else cpu)")
	fs.IntVar(&f.context, "context", 0, "context length in tokens (default: the model's, at most 32768)")
	fs.StringVar(&f.memory, "memory", "", "memory budget for weights, experts and cache, e.g. 12GB (default: from available RAM)")
	fs.IntVar(&f.experts.Capacity, "capacity", 0, "expert slots per MoE layer (default: from the memory budget)")
	fs.StringVar(&f.experts.Policy, "policy", "", "expert miss policy: exact (page in, output identical), fast (skip misses, renormalise), os (memory-map), resident (default: resident if the model fits, else exact)")
	fs.StringVar(&f.experts.Profile, "profile", "", "expert profile JSON to fill and pin slots from (default: profiles/<model>.json if present)")
	fs.IntVar(&f.experts.Pin, "pin", 0, "pin the profile's N most used experts of each layer")
	fs.BoolVar(&f.experts.DirectIO, "direct-io", false, "read experts with O_DIRECT so the page cache keeps no second copy")
	fs.BoolVar(&f.experts.Prefetch, "prefetch", true, "when paging on the CPU, predict the next layer's experts during decode and start loading them early, and run resident experts while misses load")
	fs.BoolVar(&f.experts.NoWarmStart, "no-warm-start", false, "neither restore nor save the resident expert set")
	fs.StringVar(&f.experts.CacheDir, "cache-dir", "", "where the warm-start state lives (default $XDG_CACHE_HOME or ~/.cache)")
}

// load opens the model; without --model it uses the embedded default when
// allowDefault is set.
func (f *modelFlags) load(allowDefault bool, stderr io.Writer) (*mlxmoe.Model, error) {
	dir := f.dir
	if dir == "" {
		if !allowDefault {
			return nil, fmt.Errorf("--model DIR is required")
		}
		cache, err := defaultmodel.CacheDir()
		if err != nil {
			return nil, err
		}
		if dir, err = defaultmodel.Dir(cache); err != nil {
			return nil, err
		}
	}
	dir = resolveModelDir(dir)
	if f.memory != "" {
		n, err := experts.ParseBytes(f.memory)
		if err != nil {
			return nil, fmt.Errorf("--memory: %w", err)
		}
		f.experts.Memory = n
	}
	if f.experts.ProfilesDir == "" {
		f.experts.ProfilesDir = "profiles"
	}
	return mlxmoe.Load(dir, mlxmoe.Options{ContextLength: f.context, Device: f.device, Experts: f.experts, Log: stderr})
}

// resolveModelDir lets --model name a model in the Hugging Face hub cache
// (ORG/NAME, as `huggingface-cli download` leaves it) when no such local
// directory exists: the newest snapshot is used.
func resolveModelDir(dir string) string {
	if _, err := os.Stat(dir); err == nil || strings.Count(dir, "/") != 1 {
		return dir
	}
	hub := hubCacheDir()
	if hub == "" {
		return dir
	}
	snaps, _ := filepath.Glob(filepath.Join(hub, "models--"+strings.ReplaceAll(dir, "/", "--"), "snapshots", "*"))
	var best string
	var bestTime time.Time
	for _, s := range snaps {
		if info, err := os.Stat(s); err == nil && info.ModTime().After(bestTime) {
			best, bestTime = s, info.ModTime()
		}
	}
	if best == "" {
		return dir
	}
	return best
}
