package mlxmoe

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/mlx-moe/mlx-moe/hub"
	"github.com/mlx-moe/mlx-moe/model"
)

// ResolveModel returns the directory of the model name names: a local
// directory as it is; a Hugging Face hub id (ORG/NAME or ORG/NAME@REV) as
// its snapshot in the Hugging Face cache, shared with huggingface_hub,
// transformers and mlx-lm. A hub id that is not cached is downloaded when
// opts.Download is set (with opts.Hub, or a client configured from the
// environment), else the error wraps hub.ErrNotCached.
func ResolveModel(name string, opts Options) (string, error) {
	if !hub.IsID(name) {
		return name, nil
	}
	id, err := hub.ParseID(name)
	if err != nil {
		return "", err
	}
	c := opts.Hub
	if c == nil {
		c = hub.NewClient()
	}
	dir, err := c.Cache.Snapshot(id)
	if err == nil {
		return dir, nil
	}
	if !opts.Download {
		return "", fmt.Errorf("%w; download it first (mlx-moe pull %s, or Options.Download)", err, id)
	}
	if c.CheckConfig == nil {
		cc := *c
		cc.CheckConfig = CheckSupported
		c = &cc
	}
	return c.Pull(context.Background(), id)
}

// CheckSupported checks that a config.json describes a model this engine
// can load, so a download can stop before the weights.
func CheckSupported(config []byte) error {
	var top struct {
		ModelType string `json:"model_type"`
		Text      *struct {
			ModelType string `json:"model_type"`
		} `json:"text_config"`
	}
	if err := json.Unmarshal(config, &top); err != nil {
		return fmt.Errorf("config.json is not a JSON object: %v", err)
	}
	mt := top.ModelType
	if top.Text != nil && top.Text.ModelType != "" {
		mt = top.Text.ModelType // a multimodal config: the language model is what runs
	}
	if types := model.SupportedTypes(); !slices.Contains(types, mt) {
		return fmt.Errorf("config.json: model_type %q is not supported by this engine (supported: %s)", mt, strings.Join(types, ", "))
	}
	if _, err := model.ParseConfig(config); err != nil {
		return fmt.Errorf("config.json: %v", err)
	}
	return nil
}
