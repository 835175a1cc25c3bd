package main

import (
	"flag"
	"fmt"
	"io"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
)

// modelFlags are the flags every command that loads a model shares.
type modelFlags struct {
	dir     string
	context int
}

func (f *modelFlags) register(fs *flag.FlagSet, defaultHelp string) {
	fs.StringVar(&f.dir, "model", "", "model directory (config.json, *.safetensors, tokenizer.json)"+defaultHelp)
	fs.IntVar(&f.context, "context", 0, "context length in tokens (default: the model's, at most 32768)")
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
	return mlxmoe.Load(dir, mlxmoe.Options{ContextLength: f.context, Log: stderr})
}
