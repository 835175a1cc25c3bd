package model_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// jambaFixtureConfig is the tiny Jamba of the fixtures: four layers, the
// second attention (attn_layer_period 4, offset 1), MoE on the second and
// fourth (expert_layer_period 2, offset 1), so the stack has a Mamba layer
// with a dense MLP, one with MoE, and attention with MoE.
var jambaFixtureConfig = jambaRefConfig{
	Vocab: 512, Hidden: 64, Inter: 64, Layers: 4, Heads: 4, KVHeads: 2,
	Experts: 8, TopK: 2, AttnPeriod: 4, AttnOffset: 1, ExpertPeriod: 2, ExpertOffset: 1,
	DState: 16, DConv: 4, Expand: 2, DtRank: 4, Eps: 1e-6,
}

// jambaConfigJSON is config.json as transformers' JambaConfig writes it.
func jambaConfigJSON(c jambaRefConfig) map[string]any {
	return map[string]any{
		"architectures": []string{"JambaForCausalLM"}, "model_type": "jamba",
		"vocab_size": c.Vocab, "hidden_size": c.Hidden, "intermediate_size": c.Inter,
		"num_hidden_layers": c.Layers, "num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads,
		"hidden_act": "silu", "rms_norm_eps": c.Eps, "tie_word_embeddings": false,
		"num_experts": c.Experts, "num_experts_per_tok": c.TopK,
		"attn_layer_period": c.AttnPeriod, "attn_layer_offset": c.AttnOffset,
		"expert_layer_period": c.ExpertPeriod, "expert_layer_offset": c.ExpertOffset,
		"mamba_d_state": c.DState, "mamba_d_conv": c.DConv, "mamba_expand": c.Expand,
		"mamba_dt_rank": "auto", "mamba_conv_bias": !c.NoConvBias, "mamba_proj_bias": c.ProjBias,
		"use_mamba_kernels": false, "max_position_embeddings": 1024, "sliding_window": nil,
		"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0, "torch_dtype": "bfloat16",
	}
}

// jambaTensor is one weight of the generated model, by its Hugging Face
// name: its shape there and its values before storage rounding.
type jambaTensor struct {
	name  string
	shape []int
	v     []float32
}

// jambaWeights draws the fixture's weights: linear layers N(0, 1/fan_in),
// norms near 1, A_log = log(1..d_state) with noise, dt_proj's bias the
// inverse softplus of time steps log-uniform in [0.001, 0.1] (Mamba's
// initialisation), so the states neither vanish nor blow up.
func jambaWeights(c jambaRefConfig, seed uint64) []jambaTensor {
	rng := rand.New(rand.NewPCG(seed, 0x6a616d6261))
	var ts []jambaTensor
	add := func(name string, shape []int, f func(i int) float64) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(f(i))
		}
		ts = append(ts, jambaTensor{name, shape, v})
	}
	normal := func(std float64) func(int) float64 { return func(int) float64 { return std * rng.NormFloat64() } }
	linear := func(name string, out, in int) { add(name, []int{out, in}, normal(1/math.Sqrt(float64(in)))) }
	norm := func(name string, n int) { add(name, []int{n}, func(int) float64 { return 1 + 0.1*rng.NormFloat64() }) }
	mlp := func(p string) {
		linear(p+"gate_proj.weight", c.Inter, c.Hidden)
		linear(p+"up_proj.weight", c.Inter, c.Hidden)
		linear(p+"down_proj.weight", c.Hidden, c.Inter)
	}
	C, N, K, R := c.Expand*c.Hidden, c.DState, c.DConv, c.DtRank
	add("model.embed_tokens.weight", []int{c.Vocab, c.Hidden}, normal(1))
	for l := range c.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		norm(p+"input_layernorm.weight", c.Hidden)
		norm(p+"pre_ff_layernorm.weight", c.Hidden)
		if l%c.AttnPeriod == c.AttnOffset {
			hd := c.Hidden / c.Heads
			linear(p+"self_attn.q_proj.weight", c.Heads*hd, c.Hidden)
			linear(p+"self_attn.k_proj.weight", c.KVHeads*hd, c.Hidden)
			linear(p+"self_attn.v_proj.weight", c.KVHeads*hd, c.Hidden)
			linear(p+"self_attn.o_proj.weight", c.Hidden, c.Heads*hd)
		} else {
			m := p + "mamba."
			linear(m+"in_proj.weight", 2*C, c.Hidden)
			add(m+"conv1d.weight", []int{C, 1, K}, normal(1/math.Sqrt(float64(K))))
			if !c.NoConvBias {
				add(m+"conv1d.bias", []int{C}, normal(0.1))
			}
			if c.ProjBias {
				add(m+"in_proj.bias", []int{2 * C}, normal(0.1))
				add(m+"out_proj.bias", []int{c.Hidden}, normal(0.1))
			}
			linear(m+"x_proj.weight", R+2*N, C)
			linear(m+"dt_proj.weight", C, R)
			add(m+"dt_proj.bias", []int{C}, func(int) float64 {
				dt := math.Exp(math.Log(0.001) + rng.Float64()*(math.Log(0.1)-math.Log(0.001)))
				return dt + math.Log(-math.Expm1(-dt))
			})
			add(m+"A_log", []int{C, N}, func(i int) float64 { return math.Log(float64(i%N+1)) + 0.1*rng.NormFloat64() })
			add(m+"D", []int{C}, func(int) float64 { return 1 + 0.1*rng.NormFloat64() })
			linear(m+"out_proj.weight", c.Hidden, C)
			norm(m+"dt_layernorm.weight", R)
			norm(m+"b_layernorm.weight", N)
			norm(m+"c_layernorm.weight", N)
		}
		if c.Experts > 1 && l%c.ExpertPeriod == c.ExpertOffset {
			add(p+"feed_forward.router.weight", []int{c.Experts, c.Hidden}, normal(2/math.Sqrt(float64(c.Hidden))))
			for e := range c.Experts {
				mlp(fmt.Sprintf("%sfeed_forward.experts.%d.", p, e))
			}
		} else {
			mlp(p + "feed_forward.")
		}
	}
	norm("model.final_layernorm.weight", c.Hidden)
	linear("lm_head.weight", c.Vocab, c.Hidden)
	return ts
}

// jambaBF16 returns the values v holds once stored as bf16.
func jambaBF16(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(kernels.BF16ToF32(kernels.F32ToBF16(x)))
	}
	return out
}

func jambaF64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// jambaLayout writes the weights in one layout: "hf" (bf16, one module
// per expert, conv1d [C, 1, K]) or "mlx" (linear layers whose input width
// divides into groups quantized to bits, experts stacked under switch_mlp,
// conv1d [C, K, 1], the rest bf16). It returns the stored tensors and the
// values the reference computes with, by Hugging Face name.
func jambaLayout(t *testing.T, ts []jambaTensor, layout string, bits, group int) (map[string]stTensor, map[string][]float64) {
	stored, eff := map[string]stTensor{}, map[string][]float64{}
	quant := func(module string, v []float32, shape []int) []float64 {
		q := quantizeMLX(t, v, shape, bits, group)
		stored[module+".weight"], stored[module+".scales"], stored[module+".biases"] = q.weight, q.scales, q.biases
		return jambaF64(q.deq)
	}
	stacks := map[string][]jambaTensor{} // switch_mlp module -> experts in order
	var stackOrder []string
	for _, w := range ts {
		switch {
		case layout == "mlx" && strings.Contains(w.name, ".experts."):
			// model.layers.L.feed_forward.experts.E.gate_proj.weight
			pre, rest, _ := strings.Cut(w.name, "experts.")
			_, proj, _ := strings.Cut(rest, ".")
			module := pre + "switch_mlp." + strings.TrimSuffix(proj, ".weight")
			if _, ok := stacks[module]; !ok {
				stackOrder = append(stackOrder, module)
			}
			stacks[module] = append(stacks[module], w)
		case layout == "mlx" && (quantizable.MatchString(w.name) || strings.HasSuffix(w.name, ".router.weight")) && w.shape[1]%group == 0:
			// mlx-lm quantizes every nn.Linear (Jamba's router is one)
			// whose input width divides into groups; dt_proj's does not.
			eff[w.name] = quant(strings.TrimSuffix(w.name, ".weight"), w.v, w.shape)
		default:
			shape := w.shape
			if layout == "mlx" && strings.HasSuffix(w.name, "conv1d.weight") {
				shape = []int{w.shape[0], w.shape[2], 1}
			}
			stored[w.name], eff[w.name] = bf16Tensor(w.v, shape...), jambaBF16(w.v)
		}
	}
	for _, module := range stackOrder {
		experts := stacks[module]
		rows, cols := experts[0].shape[0], experts[0].shape[1]
		var all []float32
		for _, w := range experts {
			all = append(all, w.v...)
		}
		v := quant(module, all, []int{len(experts), rows, cols})
		for e, w := range experts {
			eff[w.name] = v[e*rows*cols : (e+1)*rows*cols]
		}
	}
	return stored, eff
}

// jambaCheckpoint writes config.json and model.safetensors of the model
// c with weights ts in layout ("mlx": 4-bit, group 64; "hf": bf16) to dir
// and returns the values the reference computes with.
func jambaCheckpoint(t *testing.T, dir string, c jambaRefConfig, ts []jambaTensor, layout string) map[string][]float64 {
	stored, eff := jambaLayout(t, ts, layout, 4, 64)
	cfg := jambaConfigJSON(c)
	if layout == "mlx" {
		q := map[string]any{"group_size": 64, "bits": 4, "mode": "affine"}
		cfg["quantization"], cfg["quantization_config"] = q, q
	}
	jambaWriteJSON(t, filepath.Join(dir, "config.json"), cfg)
	writeMLACheckpoint(t, dir, stored)
	return eff
}

// TestRegenJamba rewrites testdata/fixtures/jamba-{4bit,hf-bf16} (run with
// MLXMOE_REGEN=1): the random weights above in both layouts, the tokenizer
// and prompts of mixtral-4bit, and reference.json computed by jambaRef
// from the stored weights.
func TestRegenJamba(t *testing.T) {
	if os.Getenv("MLXMOE_REGEN") != "1" {
		t.Skip("set MLXMOE_REGEN=1 to rewrite the jamba fixtures")
	}
	const seed = 21
	src := fixture.Dir(t, "fixtures/mixtral-4bit")
	prompts := fixture.LoadReference(t, src)
	c := jambaFixtureConfig
	ts := jambaWeights(c, seed)
	for _, f := range []struct{ name, layout string }{{"jamba-4bit", "mlx"}, {"jamba-hf-bf16", "hf"}} {
		t.Run(f.name, func(t *testing.T) {
			dir := filepath.Join(fixture.Root(), "fixtures", f.name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			eff := jambaCheckpoint(t, tmp, c, ts, f.layout)
			meta := map[string]any{"fixture": f.name, "family": "jamba", "layout": f.layout, "seed": seed,
				"dtype": "float64", "generator": "mlx-moe TestRegenJamba",
				"source": "float64 Go transcription of transformers models/jamba/modeling_jamba.py (not transformers itself)"}
			if f.layout == "mlx" {
				meta["bits"], meta["group_size"] = 4, 64
			}
			for _, name := range []string{"config.json", "model.safetensors"} {
				data, err := os.ReadFile(filepath.Join(tmp, name))
				if err != nil {
					t.Fatal(err)
				}
				if name == "config.json" {
					err = os.WriteFile(filepath.Join(dir, name), data, 0o644)
				} else {
					jambaWriteGzip(t, filepath.Join(dir, name+".gz"), data)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range []string{"tokenizer.json.gz", "tokenizer_config.json"} {
				b, err := os.ReadFile(filepath.Join(fixture.Root(), "fixtures", "mixtral-4bit", name))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ref := jambaReference(&jambaRef{cfg: c, w: eff}, prompts)
			for k, v := range meta {
				ref[k] = v
			}
			var buf bytes.Buffer
			if err := json.NewEncoder(&buf).Encode(ref); err != nil {
				t.Fatal(err)
			}
			jambaWriteGzip(t, filepath.Join(dir, "reference.json.gz"), buf.Bytes())
		})
	}
}

// jambaReference runs the reference over the prompts (all positions'
// logits for the first) and the greedy continuation, in reference.json's
// layout.
func jambaReference(r *jambaRef, prompts *fixture.Reference) map[string]any {
	ps, _ := refPrompts(prompts.Prompts, func(ids []int32) (*refTrace, error) {
		o := r.forward(ids)
		routes := map[string][][]int32{}
		for l, rt := range o.routes {
			routes[fmt.Sprintf("model.layers.%d.feed_forward.router", l)] = rt
		}
		return &refTrace{logits: o.logits, embedLast: o.embedLast, layerLast: o.layerLast, routes: routes}, nil
	})
	greedy, _ := refGreedy(prompts.Greedy.PromptIDs, func(ids []int32) ([]float64, error) {
		o := r.forward(ids)
		return o.logits[len(o.logits)-1], nil
	})
	return map[string]any{"prompts": ps, "greedy": greedy}
}

func jambaWriteJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func jambaWriteGzip(t *testing.T, path string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := io.Copy(zw, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestJambaReferenceMatchesStoredWeights recomputes each jamba fixture's
// reference logits (prompt 0, every position) with jambaRef from the
// committed safetensors, dequantized here by a plain loop (w = scale*q +
// bias, 4-bit codes LSB first), independent of the kernels: the committed
// reference belongs to the committed weights.
func TestJambaReferenceMatchesStoredWeights(t *testing.T) {
	for _, name := range []string{"jamba-4bit", "jamba-hf-bf16"} {
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			ref := fixture.LoadReference(t, dir)
			w := jambaStoredWeights(t, dir)
			got := (&jambaRef{cfg: jambaFixtureConfig, w: w}).forward(ref.Prompts[0].IDs).logits
			var worst float64
			for i, row := range ref.Prompts[0].AllLogits {
				for j, v := range row {
					worst = math.Max(worst, math.Abs(got[i][j]-float64(v)))
				}
			}
			if worst > 1e-5 {
				t.Fatalf("reference.json differs from the reference run on the stored weights by %g", worst)
			}
		})
	}
}

// jambaStoredWeights reads a jamba checkpoint's tensors as float64 values
// by Hugging Face name: bf16 as stored, MLX 4-bit modules dequantized, and
// stacked switch_mlp experts split into experts.E modules.
func jambaStoredWeights(t *testing.T, dir string) map[string][]float64 {
	ix, err := model.OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	read := func(name string) ([]byte, *model.TensorInfo) {
		info, ok := ix.Tensor(name)
		if !ok {
			t.Fatalf("%s: no tensor %s", dir, name)
		}
		b, err := ix.ReadBytes(info)
		if err != nil {
			t.Fatal(err)
		}
		return b, info
	}
	bf16 := func(b []byte) []float64 {
		v := make([]float64, len(b)/2)
		for i := range v {
			v[i] = float64(kernels.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:])))
		}
		return v
	}
	out := map[string][]float64{}
	for _, name := range ix.Names() {
		b, info := read(name)
		switch {
		case strings.HasSuffix(name, ".scales") || strings.HasSuffix(name, ".biases"):
		case info.DType == model.BF16:
			out[name] = bf16(b)
		case info.DType == model.U32:
			module := strings.TrimSuffix(name, ".weight")
			sb, _ := read(module + ".scales")
			bb, _ := read(module + ".biases")
			scales, biases := bf16(sb), bf16(bb)
			w := make([]float64, 8*len(b)/4) // 4-bit codes, 8 per word
			for i := range w {
				word := binary.LittleEndian.Uint32(b[4*(i/8):])
				q := float64(word >> (4 * (i % 8)) & 15)
				w[i] = scales[i/64]*q + biases[i/64]
			}
			if pre, proj, ok := strings.Cut(module, "switch_mlp."); ok {
				experts := int(info.Shape[0])
				per := len(w) / experts
				for e := range experts {
					out[fmt.Sprintf("%sexperts.%d.%s.weight", pre, e, proj)] = w[e*per : (e+1)*per]
				}
				continue
			}
			out[name] = w
		default:
			t.Fatalf("%s: unexpected dtype %s", name, info.DType)
		}
	}
	return out
}

// TestJambaVariants builds checkpoints of config variants the fixtures do
// not cover (in_proj/out_proj biases without a conv bias; a dense stack
// without experts, as Jamba Reasoning 3B; attention and MoE on other
// periods) and compares the engine with jambaRef on them: every position's
// logits of a prompt, and the last ones decoded token by token.
func TestJambaVariants(t *testing.T) {
	ids := []int32{1, 454, 88, 205, 61, 386, 305, 281, 294, 370, 323, 300, 296, 286, 299, 503, 267, 89}
	for _, v := range []struct {
		name, layout string
		edit         func(c *jambaRefConfig)
	}{
		{"proj bias, no conv bias", "hf", func(c *jambaRefConfig) { c.ProjBias, c.NoConvBias = true, true }},
		{"dense", "mlx", func(c *jambaRefConfig) { c.Experts, c.TopK = 1, 1 }},
		{"periods", "mlx", func(c *jambaRefConfig) { c.AttnPeriod, c.AttnOffset, c.ExpertPeriod, c.ExpertOffset = 2, 0, 1, 0 }},
	} {
		t.Run(v.name, func(t *testing.T) {
			c := jambaFixtureConfig
			v.edit(&c)
			dir := t.TempDir()
			eff := jambaCheckpoint(t, dir, c, jambaWeights(c, 7), v.layout)
			want := (&jambaRef{cfg: c, w: eff}).forward(ids).logits
			m, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			e := cpu.New()
			rn := model.NewRunner(m, e)
			got, err := rn.Forward(m.NewCache(e, len(ids)), ids, true)
			if err != nil {
				t.Fatal(err)
			}
			var worst float64
			for i, row := range want {
				for j, x := range row {
					worst = math.Max(worst, math.Abs(float64(got[i*c.Vocab+j])-x))
				}
			}
			dc := m.NewCache(e, len(ids))
			var last []float32
			for _, id := range ids {
				if last, err = rn.Forward(dc, []int32{id}, false); err != nil {
					t.Fatal(err)
				}
			}
			for j, x := range want[len(ids)-1] {
				worst = math.Max(worst, math.Abs(float64(last[j])-x))
			}
			t.Logf("max |Δ| %.2g", worst)
			if worst > logitTol {
				t.Fatalf("logits differ from the reference by %g", worst)
			}
		})
	}
}
