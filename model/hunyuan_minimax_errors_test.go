package model_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestHunyuanMiniMaxVariants: the config options of hunyuan_v1_moe and
// minimax_m2 that the engine does not run are refused with an error naming
// the field, never run as something else.
func TestHunyuanMiniMaxVariants(t *testing.T) {
	cases := []struct {
		name, fixture string
		edit          func(c map[string]any)
		want          string
	}{
		{"o_proj bias", "hunyuan_v1_moe-4bit", func(c map[string]any) { c["attention_bias"] = true }, "attention_bias"},
		{"per-layer top-k differs", "hunyuan_v1_moe-4bit", func(c map[string]any) { c["moe_topk"] = []int{4, 2} }, "moe_topk: per-layer values differ"},
		{"per-layer list of non-integers", "hunyuan_v1_moe-4bit", func(c map[string]any) { c["num_shared_expert"] = []string{"a"} }, "num_shared_expert"},
		{"dynamic rope without alpha", "hunyuan_v1_moe-4bit", func(c map[string]any) {
			c["rope_scaling"] = map[string]any{"type": "dynamic", "factor": 2.0}
		}, `rope_scaling type "dynamic" without alpha`},
		{"softmax scoring", "minimax_m2-4bit", func(c map[string]any) { c["scoring_func"] = "softmax" }, "scoring_func"},
		{"per-head q/k norm", "minimax_m2-4bit", func(c map[string]any) { c["qk_norm_type"] = "per_head" }, "qk_norm_type"},
		{"lightning attention", "minimax_m2-4bit", func(c map[string]any) { c["attn_type_list"] = []int{0, 1} }, "attn_type_list[0]"},
		{"odd rotary_dim", "minimax_m2-4bit", func(c map[string]any) { c["rotary_dim"] = 7 }, "rotary_dim 7"},
		{"rotary_dim past head_dim", "minimax_m2-4bit", func(c map[string]any) { c["rotary_dim"] = 64 }, "rotary_dim 64"},
		{"shared expert", "minimax_m2-4bit", func(c map[string]any) { c["shared_intermediate_size"] = 64 }, "shared_intermediate_size"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+tc.fixture)
			fixture.EditConfig(t, dir, tc.edit)
			wantLoadError(t, dir, tc.want)
		})
	}
}

// TestHunyuanPerLayerLists: Hunyuan-A13B writes moe_topk and friends as
// one value per layer; equal values read as the single value.
func TestHunyuanPerLayerLists(t *testing.T) {
	c, err := model.ParseConfig([]byte(`{"model_type": "hunyuan_v1_moe", "vocab_size": 8, "hidden_size": 8,
		"num_hidden_layers": 2, "num_attention_heads": 2, "num_experts": [4, 4], "moe_topk": [2, 2],
		"moe_intermediate_size": [16, 16], "num_shared_expert": [1, 1]}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.NumExperts != 4 || c.NumExpertsPerTok != 2 || c.MoETopK != 2 || c.MoEIntermediateSize != 16 || c.NumSharedExpert != 1 {
		t.Fatalf("experts %d, top-k %d (moe_topk %d), moe_intermediate_size %d, num_shared_expert %d; want 4, 2 (2), 16, 1",
			c.NumExperts, c.NumExpertsPerTok, c.MoETopK, c.MoEIntermediateSize, c.NumSharedExpert)
	}
}

// TestHunyuanCLAAsTransformers: use_cla (cross-layer attention) changes
// nothing, as in transformers' hunyuan_v1_moe, whose layers each project
// their own K and V whatever the config says: the fixture with use_cla and
// a share factor of 2 gives bitwise the logits it gives without.
func TestHunyuanCLAAsTransformers(t *testing.T) {
	logits := func(edit func(map[string]any)) []float32 {
		dir := fixture.Dir(t, "fixtures/hunyuan_v1_moe-4bit")
		fixture.EditConfig(t, dir, edit)
		m, ref := openFixture(t, dir)
		e := cpu.New()
		out, err := model.NewRunner(m, e).Forward(m.NewCache(e, len(ref.Prompts[0].IDs)), ref.Prompts[0].IDs, true)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	plain := logits(func(map[string]any) {})
	cla := logits(func(c map[string]any) { c["use_cla"], c["cla_share_factor"] = true, 2 })
	if !slices.Equal(plain, cla) {
		t.Errorf("use_cla changed the logits (max |Δ| %g); transformers ignores it", maxAbsDiff(plain, cla))
	}
}

// TestHunyuanSharedKVCheckpointIsRefused: a checkpoint that shares K/V
// across layers (use_cla, the second layer without k_proj/v_proj, as
// Tencent's remote code saves Hunyuan-Large) fails to load naming the
// missing tensor; transformers' hunyuan_v1_moe would fill it with random
// weights.
func TestHunyuanSharedKVCheckpointIsRefused(t *testing.T) {
	g, _ := buildHunyuan(21, 0)
	for _, name := range []string{"k_proj", "v_proj"} {
		delete(g.tensors, "model.layers.1.self_attn."+name+".weight")
	}
	dir := t.TempDir()
	cfg := hunyuanConfig()
	cfg["use_cla"] = true
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fixture.WriteSafetensors(filepath.Join(dir, "model.safetensors"), g.tensors); err != nil {
		t.Fatal(err)
	}
	wantLoadError(t, dir, "model.layers.1.self_attn.k_proj")
}
