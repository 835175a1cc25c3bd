package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/hub"
	"github.com/mlx-moe/mlx-moe/internal/synth"
)

func init() {
	c := &command{name: "synth", summary: "write a random checkpoint with the exact layout of a large MoE model"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, "synth --like MODEL --out DIR [--scale 1.0]", stderr)
		like := fs.String("like", "qwen3-coder-next", "model to imitate: "+strings.Join(synth.Models(), ", "))
		out := fs.String("out", "", "directory to write (required)")
		scale := fs.Float64("scale", 1, "shrink the number of layers and experts by this factor, for tests (0 < scale <= 1)")
		seed := fs.Uint64("seed", 0, "random seed")
		shard := fs.String("shard-size", "5GB", "start a new safetensors shard after this many bytes")
		vocab := fs.Int("vocab", 0, "vocabulary size (default: the model's)")
		group := fs.Int("group-size", 64, "quantization group size: 32, 64 or 128")
		tok := fs.String("tokenizer", "", "directory with tokenizer.json and tokenizer_config.json to copy (default: the embedded "+defaultmodel.Name+"'s)")
		if _, err := parseInterspersed(fs, args); err != nil {
			return err
		}
		if *out == "" {
			fs.Usage()
			return fmt.Errorf("--out is required")
		}
		if !(*scale > 0 && *scale <= 1) { // NaN too
			return fmt.Errorf("--scale %g: expected a number above 0 and at most 1", *scale)
		}
		if *vocab < 0 {
			return fmt.Errorf("--vocab %d: expected a positive vocabulary size (0: the model's)", *vocab)
		}
		shardBytes, err := experts.ParseBytes(*shard)
		if err != nil {
			return fmt.Errorf("--shard-size: %w", err)
		}
		opts := synth.Options{Like: *like, Out: *out, Scale: *scale, Vocab: *vocab,
			ShardBytes: shardBytes, GroupSize: *group, Seed: *seed, Progress: stderr}
		if err := checkFreeSpace(opts); err != nil {
			return err
		}
		if *tok == "" {
			cache, err := defaultmodel.CacheDir()
			if err == nil {
				*tok, err = defaultmodel.Dir(cache)
			}
			if err != nil {
				return fmt.Errorf("unpacking the embedded model's tokenizer: %w (pass --tokenizer)", err)
			}
		}
		opts.TokenizerDir = *tok
		res, err := synth.Write(opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: %d layers x %d experts, %s in %d shards, %.0f s\n",
			res.Dir, res.Layers, res.Experts, experts.FormatBytes(res.Bytes), len(res.Shards), res.Elapsed.Seconds())
		if *tok != "" {
			fmt.Fprintf(stdout, "tokenizer from %s: %d token ids; the model's vocabulary is larger, and ids beyond the tokenizer's are never generated\n", *tok, res.LiveTokens)
		}
		return nil
	}
	register(c)
}

// freeSpace reports the free bytes where a path would be written (a
// variable so tests can pretend a disk is full).
var freeSpace = hub.DiskFree

// checkFreeSpace fails before anything is written when the file system
// that would hold opts.Out has less room than the checkpoint needs.
func checkFreeSpace(opts synth.Options) error {
	need, err := synth.Bytes(opts)
	if err != nil {
		return err
	}
	dir := filepath.Clean(opts.Out)
	for { // the nearest directory that exists
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	if free := freeSpace(dir); free >= 0 && need > free {
		return fmt.Errorf("--out %s: the checkpoint needs %s, but only %s is free there", opts.Out, experts.FormatBytes(need), experts.FormatBytes(free))
	}
	return nil
}
