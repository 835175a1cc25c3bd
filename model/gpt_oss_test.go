package model_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
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
			wantLoadError(t, dir, c.want)
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

// f32KV is the CPU executor with its compact KV caches stored as float32
// rows: gpt-oss's compact-cache path (scratch rows, StoreKV,
// AttentionSinksKV) with no rounding.
type f32KV struct{ *cpu.Executor }

func (e f32KV) NewKV(rows, cols int, _ kernels.KVFormat, group int) (*graph.KV, error) {
	return e.Executor.NewKV(rows, cols, kernels.KVF32, group)
}

// TestGptOSSCompactKVPath: with the caches' rounding taken out, gpt-oss's
// compact-KV path gives bitwise the logits of its float32 caches, by
// prefill and token by token (so the keys and values are stored at the
// right rows and read back through the window and sinks alike); and half
// precision caches take half the bytes. The rounding itself is the
// kernels' (TestAttentionSinksKVMatchesReference) and its effect on
// quality TestKVFormatFixtures'.
func TestGptOSSCompactKVPath(t *testing.T) {
	for _, name := range []string{"gpt_oss-hf-mxfp4", "gpt_oss-mxfp4-q8", "gpt_oss-hf-bf16"} {
		t.Run(name, func(t *testing.T) {
			m, ref := openFixture(t, fixture.Dir(t, "fixtures/"+name))
			e := cpu.New()
			ids := ref.Prompts[0].IDs
			run := func(e graph.Executor, f kernels.KVFormat, oneByOne bool) ([]float32, int64) {
				m.KVFormat = f
				rn := model.NewRunner(m, e)
				defer rn.Free()
				c := m.NewCache(e, len(ids))
				defer c.Free(e)
				if !oneByOne {
					logits, err := rn.Forward(c, ids, true)
					if err != nil {
						t.Fatal(err)
					}
					return slices.Clone(logits), c.Bytes()
				}
				var all []float32
				for _, id := range ids {
					logits, err := rn.Forward(c, []int32{id}, false)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, logits...)
				}
				return all, c.Bytes()
			}
			for _, oneByOne := range []bool{false, true} {
				want, f32Bytes := run(e, kernels.KVF32, oneByOne)
				got, _ := run(f32KV{e}, kernels.KVF16, oneByOne)
				if !slices.Equal(got, want) {
					t.Errorf("decode %v: the compact-cache path's logits differ from the float32 caches' (max |Δ| %g)", oneByOne, maxAbsDiff(got, want))
				}
				if _, halfBytes := run(e, kernels.KVF16, oneByOne); 2*halfBytes != f32Bytes {
					t.Errorf("f16 caches hold %d bytes, float32 ones %d", halfBytes, f32Bytes)
				}
			}
		})
	}
}

// TestGptOSSBF16ExpertShapes: transformers' bf16 experts whose shapes do
// not fit the config are a load error naming the tensor.
func TestGptOSSBF16ExpertShapes(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/gpt_oss-hf-bf16")
	fixture.EditConfig(t, dir, func(c map[string]any) { c["intermediate_size"] = 32 })
	wantLoadError(t, dir, "mlp.experts.gate_up_proj is BF16[16 64 128], expected BF16 [16 64 64]")
}

// openFixture loads the model in dir (closed when the test ends) and its
// reference.
func openFixture(t *testing.T, dir string) (*model.Model, *fixture.Reference) {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, fixture.LoadReference(t, dir)
}

// wantLoadError fails the test unless loading dir fails with an error
// containing want.
func wantLoadError(t *testing.T, dir, want string) {
	t.Helper()
	m, err := model.Load(dir)
	if err == nil {
		m.Close()
		t.Fatalf("loaded; want an error naming %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %q", err, want)
	}
}
