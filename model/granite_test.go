package model_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestGraniteConfigErrors checks that the options the Granite families do
// not implement are refused with an error naming the field.
func TestGraniteConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		fixture, name string
		edit          func(c map[string]any)
		want          string
	}{
		{"granitemoe-4bit", "activation", func(c map[string]any) { c["hidden_act"] = "gelu" }, "hidden_act"},
		{"granitemoe-4bit", "attention bias", func(c map[string]any) { c["attention_bias"] = true }, "attention_bias"},
		{"granitemoehybrid-4bit", "position embedding", func(c map[string]any) { c["position_embedding_type"] = "alibi" }, "position_embedding_type"},
		{"granitemoehybrid-4bit", "layer type", func(c map[string]any) { c["layer_types"] = []string{"mamba", "attention", "mamba", "conv"} }, "layer_types[3]"},
		{"granitemoehybrid-4bit", "layer count", func(c map[string]any) { c["layer_types"] = []string{"mamba"} }, "layer_types has 1 entries"},
		{"granitemoehybrid-4bit", "head dim", func(c map[string]any) { c["mamba_d_head"] = 12 }, "mamba_d_head"},
		{"granitemoehybrid-4bit", "head dim string", func(c map[string]any) { c["mamba_d_head"] = "big" }, "mamba_d_head"},
		{"granitemoehybrid-4bit", "groups", func(c map[string]any) { c["mamba_n_groups"] = 3 }, "mamba_n_groups"},
		{"granitemoehybrid-4bit", "norm before gate", func(c map[string]any) { c["mamba_norm_before_gate"] = true }, "mamba_norm_before_gate"},
		{"granitemoehybrid-4bit", "time step limit", func(c map[string]any) { c["time_step_limit"] = []float64{1} }, "time_step_limit"},
		{"granitemoehybrid-4bit", "expand", func(c map[string]any) { c["mamba_expand"] = 1.01 }, "mamba_expand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+tc.fixture)
			fixture.EditConfig(t, dir, tc.edit)
			m, err := model.Load(dir)
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// bareExecutor hides every optional capability of its executor.
type bareExecutor struct{ graph.Executor }

// TestGraniteNeedsCapabilities checks that an executor without the Mamba-2
// ops or Scale gets an error naming them, not a panic.
func TestGraniteNeedsCapabilities(t *testing.T) {
	for name, want := range map[string]string{"granitemoe-4bit": "graph.Scaler", "granitemoehybrid-4bit": "graph.Scaler"} {
		m, err := model.Load(fixture.Dir(t, "fixtures/"+name))
		if err != nil {
			t.Fatal(err)
		}
		e := bareExecutor{cpu.New()}
		c := m.NewCache(e, 4)
		_, err = model.NewRunner(m, e).Forward(c, []int32{1, 2}, false)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %s", name, err, want)
		}
		m.Close()
	}
}

// scalerOnly has Scale but not the Mamba-2 ops.
type scalerOnly struct{ graph.Executor }

func (s scalerOnly) Scale(out, x *graph.Tensor, n int, v float32) {
	s.Executor.(graph.Scaler).Scale(out, x, n, v)
}

func TestMamba2NeedsExecutorOps(t *testing.T) {
	m, err := model.Load(fixture.Dir(t, "fixtures/granitemoehybrid-4bit"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := scalerOnly{cpu.New()}
	_, err = model.NewRunner(m, e).Forward(m.NewCache(e, 4), []int32{1, 2}, false)
	if err == nil || !strings.Contains(err.Error(), "graph.Mamba2Executor") {
		t.Errorf("error %v, want one naming graph.Mamba2Executor", err)
	}
}

// TestGraniteDenseHybrid checks the dense Granite 4.0 form (no routed
// experts, the shared MLP alone; MLX files name it mlp.*_proj) in both
// layouts: fixtures made in a temporary directory by the generator of the
// committed ones, checked like them.
func TestGraniteDenseHybrid(t *testing.T) {
	prompts := fixture.LoadReference(t, fixture.Dir(t, "fixtures/qwen3_moe-4bit"))
	prompts.Prompts = prompts.Prompts[:2] // the greedy run continues prompt 1; the long one would only cost time
	for _, s := range []granSpec{
		{name: "dense-4bit", hybrid: true, dense: true, mlx: true, seed: 21, embMul: 3, resM: 0.7, attnMul: 0.125, ls: 3},
		{name: "dense-hf-bf16", hybrid: true, dense: true, rope: true, seed: 22, embMul: 3, resM: 0.7, attnMul: 0.125, ls: 3},
	} {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			writeGraniteFixture(t, s, prompts, dir)
			rel, err := filepath.Rel(fixture.Root(), dir)
			if err != nil {
				t.Fatal(err)
			}
			checkFixture(t, rel)
		})
	}
}

// TestConfigJSONKeysAreUnique: two Config fields with the same json key
// are both ignored by encoding/json, silently. Families add their blocks
// to Config in parallel (the Mamba-1 and Mamba-2 ones share mamba_* keys),
// so a merge that duplicates a key must fail here, not load zeros.
func TestConfigJSONKeysAreUnique(t *testing.T) {
	seen := map[string]string{}
	typ := reflect.TypeFor[model.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if key == "" || key == "-" {
			continue
		}
		if other, dup := seen[key]; dup {
			t.Errorf("json key %q is on both %s and %s", key, other, f.Name)
		}
		seen[key] = f.Name
	}
}
