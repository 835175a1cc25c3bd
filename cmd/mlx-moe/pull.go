package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/hub"
)

var pullCmd = &command{
	name:    "pull",
	summary: "download a model from the Hugging Face Hub into the Hugging Face cache",
}

func init() {
	pullCmd.run = runPull
	register(pullCmd)
}

func runPull(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(pullCmd, `pull ORG/NAME[@REVISION] [--include PATTERN ...] [--quiet]

Downloads the files the engine needs (config, safetensors weights, tokenizer,
chat template) into the Hugging Face cache ($HF_HUB_CACHE, default
~/.cache/huggingface/hub), where huggingface-cli, transformers and mlx-lm
find them too. Files already there are not fetched again; an interrupted
pull resumes. Private or gated models need HF_TOKEN (or huggingface-cli
login); HF_ENDPOINT names a mirror.`, stderr)
	var include listFlag
	fs.Var(&include, "include", "fetch only files matching this pattern, as huggingface-cli's --include (repeatable; default: what the engine needs)")
	quiet := fs.Bool("quiet", false, "show no progress")
	jobs := fs.Int("jobs", 8, "connections at once (files, and ranged parts of large files)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("expected one model id, ORG/NAME or ORG/NAME@REVISION (e.g. mlx-community/Qwen3-Coder-Next-4bit), got %d arguments", len(rest))
	}
	if *jobs < 1 || *jobs > 64 {
		return fmt.Errorf("--jobs %d: expected 1 to 64", *jobs)
	}
	id, err := hub.ParseID(rest[0])
	if err != nil {
		return err
	}
	c := hubClient(stderr, *quiet)
	c.Include, c.Jobs = include, *jobs
	if c.Offline {
		return fmt.Errorf("HF_HUB_OFFLINE is set, so nothing can be downloaded; unset it to pull %s", id)
	}
	ctx, stopped := stopOnSignal()
	dir, err := c.Pull(ctx, id)
	if serr := stopped(); serr != nil {
		return fmt.Errorf("%w: what was downloaded is kept; run `mlx-moe pull %s` again to resume", serr, id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, dir)
	return nil
}

// hubClient is a Hub client configured from the environment that shows
// its progress on w (a bar on a terminal, plain lines otherwise) and
// refuses, before the weights, a model the engine cannot run.
func hubClient(w io.Writer, quiet bool) *hub.Client {
	c := hub.NewClient()
	c.Progress = hub.NewProgress(w, quiet, 0)
	c.CheckConfig = mlxmoe.CheckSupported
	return c
}

// resolve returns the directory of the model --model (or the first
// argument) names. A hub id not in the cache is downloaded, with its
// progress on stderr, unless --no-download or HF_HUB_OFFLINE forbid it.
func (f *modelFlags) resolve(stderr io.Writer) (string, error) {
	if !hub.IsID(f.dir) {
		return modelDir(f.dir)
	}
	c := hubClient(stderr, false)
	dir, err := mlxmoe.ResolveModel(f.dir, mlxmoe.Options{Download: !f.noDownload, Hub: c})
	switch {
	case err == nil:
		return dir, nil
	case errors.Is(err, hub.ErrOffline):
		return "", fmt.Errorf("%s is not in the Hugging Face cache (%s) and HF_HUB_OFFLINE is set, so it is not downloaded; run `mlx-moe pull %s` with network access first, or unset HF_HUB_OFFLINE",
			f.dir, c.Cache.Dir, f.dir)
	case errors.Is(err, hub.ErrNotCached):
		return "", fmt.Errorf("%s is not in the Hugging Face cache (%s); download it with `mlx-moe pull %s`, or drop --no-download",
			f.dir, c.Cache.Dir, f.dir)
	case errors.Is(err, hub.ErrRepoNotFound):
		return "", fmt.Errorf("%w (no local directory %s exists either)", err, f.dir)
	}
	return "", err
}

// localModelDir resolves a --model value without the network: a
// directory as it is, a hub id to its snapshot in the Hugging Face cache.
func localModelDir(name string) (string, error) {
	c := hub.Cache{Dir: hub.CacheDir()}
	dir, err := c.Local(name)
	if errors.Is(err, hub.ErrNotCached) {
		return "", fmt.Errorf("%s is not in the Hugging Face cache (%s); download it with `mlx-moe pull %s`", name, c.Dir, name)
	}
	return dir, err
}

// takeModelArg makes a first argument that names a model (a hub id, or a
// directory with a config.json) the model, as in `mlx-moe serve
// mlx-community/Qwen3-Coder-Next-4bit`, and returns the other arguments.
func (f *modelFlags) takeModelArg(rest []string) ([]string, error) {
	if len(rest) == 0 || !isModelArg(rest[0]) {
		return rest, nil
	}
	if f.dir != "" {
		return nil, fmt.Errorf("the model is given twice: --model %s and %s", f.dir, rest[0])
	}
	f.dir = rest[0]
	return rest[1:], nil
}

func isModelArg(s string) bool {
	if hub.IsID(s) {
		return true
	}
	info, err := os.Stat(filepath.Join(s, "config.json"))
	return err == nil && info.Mode().IsRegular()
}

// hubModelNames lists the models in the Hugging Face cache as ORG/NAME.
func hubModelNames() []string {
	models, _ := hub.Cache{Dir: hub.CacheDir()}.List()
	names := make([]string, len(models))
	for i, m := range models {
		names[i] = m.Repo
	}
	return names
}
