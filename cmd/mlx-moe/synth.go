package main

import (
	"fmt"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"io"
	"strings"

	"github.com/mlx-moe/mlx-moe/experts"
)

func init() {
	c := &command{name: "synth", summary: "write a random checkpoint with the exact layout of a large MoE model"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, "synth --like MODEL --out DIR [--scale 1.0]", stderr)
		like := fs.String("like", "qwen3-coder-next", "model to imitate: "+strings.Join(experts.SynthModels(), ", "))
		out := fs.String("out", "", "directory to write (required)")
		scale := fs.Float64("scale", 1, "shrink the number of layers and experts by this factor, for tests (0 < scale <= 1)")
		seed := fs.Uint64("seed", 0, "random seed")
		shard := fs.String("shard-size", "5GB", "start a new safetensors shard after this many bytes")
		vocab := fs.Int("vocab", 0, "vocabulary size (default: the model's)")
		tok := fs.String("tokenizer", "", "directory with tokenizer.json and tokenizer_config.json to copy (default: the embedded "+defaultmodel.Name+"'s)")
		if _, err := parseInterspersed(fs, args); err != nil {
			return err
		}
		if *out == "" {
			fs.Usage()
			return fmt.Errorf("--out is required")
		}
		shardBytes, err := experts.ParseBytes(*shard)
		if err != nil {
			return fmt.Errorf("--shard-size: %w", err)
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
		res, err := experts.Synthesize(experts.SynthOptions{
			Like: *like, Out: *out, Scale: *scale, Vocab: *vocab, TokenizerDir: *tok,
			ShardBytes: shardBytes, Seed: *seed, Progress: stderr,
		})
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
