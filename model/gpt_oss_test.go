package model_test

import (
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestGptOSSRejectsWhatItDoesNotImplement: config options the gpt_oss
// family does not implement are load errors naming the field.
func TestGptOSSRejectsWhatItDoesNotImplement(t *testing.T) {
	for _, c := range []struct {
		name, want string
		change     func(map[string]any)
	}{
		{"clamp", "swiglu_limit", func(c map[string]any) { c["swiglu_limit"] = 5.0 }},
		{"layer type", "layer_types[1]", func(c map[string]any) {
			c["layer_types"] = []string{"sliding_attention", "chunked_attention", "sliding_attention", "full_attention"}
		}},
		{"layer count", "layer_types has 2 entries", func(c map[string]any) {
			c["layer_types"] = []string{"sliding_attention", "full_attention"}
		}},
		{"window", "sliding_window", func(c map[string]any) { c["sliding_window"] = 0 }},
		{"experts", "num_local_experts", func(c map[string]any) { c["num_local_experts"] = 0 }},
		{"top-k", "num_experts_per_tok", func(c map[string]any) { c["num_experts_per_tok"] = 17 }},
		{"quant mode", "mode \"mxfp6\"", func(c map[string]any) {
			c["quantization"].(map[string]any)["model.layers.0.mlp.experts.gate_proj"] = map[string]any{"group_size": 32, "bits": 4, "mode": "mxfp6"}
			delete(c, "quantization_config")
		}},
		{"quant shape", "mode mxfp4 needs 4 bits in groups of 32", func(c map[string]any) {
			c["quantization"].(map[string]any)["model.layers.0.mlp.experts.gate_proj"] = map[string]any{"group_size": 64, "bits": 4, "mode": "mxfp4"}
			delete(c, "quantization_config")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/gpt_oss-mxfp4-q8")
			fixture.EditConfig(t, dir, c.change)
			m, err := model.Load(dir)
			if err == nil {
				m.Close()
				t.Fatalf("loaded; want an error naming %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

// TestMXQuantizationConfig: MLX's per-module modes, and overrides without
// a mode under a microscaling default.
func TestMXQuantizationConfig(t *testing.T) {
	c, err := model.ParseConfig([]byte(`{"model_type":"gpt_oss","vocab_size":8,"hidden_size":64,"num_hidden_layers":1,"num_attention_heads":1,
		"quantization":{"group_size":32,"bits":4,"mode":"mxfp4","model.layers.0.mlp.router":{"group_size":64,"bits":8},
		"model.layers.0.self_attn.q_proj":{"group_size":32,"bits":4},"lm_head":{"group_size":16,"bits":4,"mode":"nvfp4"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for module, want := range map[string]string{
		"model.layers.0.mlp.experts.gate_proj": "mxfp4",
		"model.layers.0.mlp.router":            "",
		"model.layers.0.self_attn.q_proj":      "mxfp4",
		"lm_head":                              "nvfp4",
	} {
		p, ok := c.Quant.For(module)
		if !ok || p.MX().String() != want && !(want == "" && p.MX() == 0) {
			t.Errorf("%s: %+v (quantized %v), want mode %q", module, p, ok, want)
		}
	}
}
