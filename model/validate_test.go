package model_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// fixtureConfig returns the parsed config.json of a fixture as a map.
func fixtureConfig(t *testing.T, name string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixture.Root(), "fixtures", name, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConfigValidation: each bad value is an error that names its field.
func TestConfigValidation(t *testing.T) {
	cases := []struct {
		fixture string
		set     map[string]any
		want    string
	}{
		{"qwen3_moe-4bit", map[string]any{"num_experts_per_tok": 0}, "num_experts_per_tok (top-k) must be between 1 and the number of experts 16, got 0"},
		{"qwen3_moe-4bit", map[string]any{"num_experts_per_tok": -1}, "num_experts_per_tok must not be negative, got -1"},
		{"qwen3_moe-4bit", map[string]any{"num_experts_per_tok": 17}, "num_experts_per_tok (top-k) must be between 1 and the number of experts 16, got 17"},
		{"qwen3_moe-4bit", map[string]any{"rms_norm_eps": -1}, "rms_norm_eps must be positive, got -1"},
		{"qwen3_moe-4bit", map[string]any{"rope_theta": -5}, "rope_theta must be positive"},
		{"qwen3_moe-4bit", map[string]any{"num_attention_heads": 3}, "num_attention_heads 3 is not a multiple of num_key_value_heads 2"},
		{"qwen3_moe-4bit", map[string]any{"num_key_value_heads": -2}, "num_key_value_heads must be a positive integer, got -2"},
		{"qwen3_moe-4bit", map[string]any{"head_dim": -32}, "head_dim must be a positive integer, got -32"},
		{"qwen3_moe-4bit", map[string]any{"hidden_size": 0}, "hidden_size must be a positive integer, got 0"},
		{"qwen3_moe-4bit", map[string]any{"vocab_size": -1}, "vocab_size must be a positive integer"},
		{"qwen3_moe-4bit", map[string]any{"num_hidden_layers": 0}, "num_hidden_layers must be a positive integer"},
		{"qwen3_moe-4bit", map[string]any{"num_hidden_layers": 1 << 20}, "num_hidden_layers 1048576 is more than any model's"},
		{"deepseek_v3-hf-bf16", map[string]any{"n_routed_experts": 1 << 20}, "1048576 experts (num_experts, n_routed_experts or num_local_experts) is more than any model's"},
		{"qwen3_moe-4bit", map[string]any{"moe_intermediate_size": -64}, "moe_intermediate_size must not be negative"},
		{"qwen3_moe-4bit", map[string]any{"hidden_size": 1 << 40}, "hidden_size 1099511627776 is larger than any model's"},
		{"qwen3_moe-4bit", map[string]any{"decoder_sparse_step": -1}, "decoder_sparse_step must not be negative"},
		{"qwen3_moe-4bit", map[string]any{"mlp_only_layers": []int{5}}, "mlp_only_layers names layer 5; layers are 0..1"},
		{"qwen3_moe-4bit", map[string]any{"max_position_embeddings": -1}, "max_position_embeddings must not be negative"},
		{"qwen3_next-4bit", map[string]any{"partial_rotary_factor": 1.5}, "partial_rotary_factor must be in (0, 1], got 1.5"},
		{"qwen3_next-4bit", map[string]any{"linear_num_value_heads": 3}, "linear_num_value_heads 3 is not a multiple of linear_num_key_heads 2"},
		{"qwen3_next-4bit", map[string]any{"linear_conv_kernel_dim": -4}, "linear_conv_kernel_dim must not be negative"},
		{"qwen3_next-4bit", map[string]any{"full_attention_interval": -4}, "full_attention_interval must not be negative"},
		{"deepseek_v3-hf-bf16", map[string]any{"n_group": 3}, "n_group 3 does not divide the 16 experts"},
		{"deepseek_v3-hf-bf16", map[string]any{"topk_group": 0}, "topk_group must be between 1 and n_group 4, got 0"},
		{"deepseek_v3-hf-bf16", map[string]any{"topk_group": 1, "num_experts_per_tok": 5}, "topk_group 1 keeps 4 experts, fewer than num_experts_per_tok 5"},
		{"deepseek_v3-hf-bf16", map[string]any{"routed_scaling_factor": -2.5}, "routed_scaling_factor must be positive"},
		{"deepseek_v3-hf-bf16", map[string]any{"kv_lora_rank": -64}, "kv_lora_rank must not be negative"},
		{"deepseek_v3-hf-bf16", map[string]any{"rope_scaling": map[string]any{"type": "yarn", "factor": -4}}, "rope_scaling.factor must be positive"},
		{"deepseek_v3-hf-bf16", map[string]any{"rope_scaling": map[string]any{"type": "yarn", "factor": 4, "beta_fast": -1}}, "rope_scaling.beta_fast must not be negative"},
	}
	for _, tc := range cases {
		c := fixtureConfig(t, tc.fixture)
		for k, v := range tc.set {
			c[k] = v
		}
		data, _ := json.Marshal(c)
		_, err := model.ParseConfig(data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with %v: error %v, want one containing %q", tc.fixture, tc.set, err, tc.want)
		}
	}
	// Every fixture's own config is valid.
	for _, name := range fixture.Names(t) {
		data, _ := json.Marshal(fixtureConfig(t, name))
		if _, err := model.ParseConfig(data); err != nil {
			t.Errorf("%s: its own config.json is rejected: %v", name, err)
		}
	}
}

// TestConfigFieldsNeverPanic sets every integer field of a few fixtures'
// configs to 0, -1 and a large value, loads the model and runs a short
// prefill and one decode step: each must fail with an error or run, never
// panic.
func TestConfigFieldsNeverPanic(t *testing.T) {
	if testing.Short() {
		t.Skip("loads each fixture a few hundred times")
	}
	extra := []string{"num_experts_per_tok", "n_group", "topk_group", "decoder_sparse_step", "full_attention_interval",
		"first_k_dense_replace", "head_dim", "num_key_value_heads", "max_position_embeddings"}
	for _, name := range []string{"qwen3_moe-4bit", "qwen3_next-4bit", "deepseek_v3-hf-bf16", "glm4_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			src := fixture.Dir(t, "fixtures/"+name)
			orig := fixtureConfig(t, name)
			fields := map[string]bool{}
			for k, v := range orig {
				if f, ok := v.(float64); ok && f == float64(int64(f)) {
					fields[k] = true
				}
			}
			for _, k := range extra {
				fields[k] = true
			}
			keys := make([]string, 0, len(fields))
			for k := range fields {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				for _, v := range []int64{0, -1, 3, 1 << 20} {
					c := map[string]any{}
					for ok, ov := range orig {
						c[ok] = ov
					}
					c[k] = v
					loadAndRun(t, src, c, fmt.Sprintf("%s=%d", k, v))
				}
			}
		})
	}
}

// loadAndRun writes config c next to symlinks to the other files of src
// and runs the model, turning a panic into a test failure named by what.
func loadAndRun(t *testing.T, src string, c map[string]any, what string) {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "config.json" {
			if err := os.Symlink(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	data, _ := json.Marshal(c)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: panic: %v", what, r)
		}
	}()
	m, err := model.Load(dir)
	if err != nil {
		return
	}
	defer m.Close()
	e := cpu.New()
	rn := model.NewRunner(m, e)
	cache := m.NewCache(e, 8)
	if _, err := rn.Forward(cache, []int32{1, 2, 3}, false); err != nil {
		return
	}
	rn.Forward(cache, []int32{4}, false)
}
