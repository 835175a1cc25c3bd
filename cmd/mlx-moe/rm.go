package main

import (
	"fmt"
	"io"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/hub"
)

var rmCmd = &command{
	name:    "rm",
	summary: "delete a model from the Hugging Face cache",
}

func init() {
	rmCmd.run = runRm
	register(rmCmd)
}

func runRm(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(rmCmd, `rm ORG/NAME [ORG/NAME ...]

Deletes every revision of the model from the Hugging Face cache
($HF_HUB_CACHE, default ~/.cache/huggingface/hub): other tools that share
the cache (huggingface-cli, transformers, mlx-lm) lose it too.`, stderr)
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return fmt.Errorf("expected the model to delete, ORG/NAME (see mlx-moe list)")
	}
	cache := hub.Cache{Dir: hub.CacheDir()}
	for _, name := range rest {
		freed, err := cache.Remove(name)
		if err != nil {
			return fmt.Errorf("%w (see mlx-moe list)", err)
		}
		fmt.Fprintf(stdout, "deleted %s (%s)\n", name, experts.FormatBytes(freed))
	}
	return nil
}
