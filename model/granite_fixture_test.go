package model_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// granSpec is one granite fixture: the family, the layout (MLX 4-bit or
// Hugging Face bf16), and the options it exercises.
type granSpec struct {
	name         string
	hybrid, mlx  bool
	dense        bool // no routed experts: the shared MLP alone
	rope, tied   bool
	seed         uint64
	embMul, resM float64
	attnMul, ls  float64
}

var granSpecs = []granSpec{
	{name: "granitemoe-4bit", mlx: true, rope: true, tied: true, seed: 11, embMul: 1.5, resM: 1.4, attnMul: 0.0625, ls: 0.8},
	{name: "granitemoe-hf-bf16", rope: true, seed: 12, embMul: 4, resM: 0.5, attnMul: 0.0625, ls: 2.5},
	{name: "granitemoehybrid-4bit", hybrid: true, mlx: true, seed: 13, embMul: 3, resM: 0.7, attnMul: 0.125, ls: 3},
	{name: "granitemoehybrid-hf-bf16", hybrid: true, rope: true, seed: 14, embMul: 3, resM: 0.7, attnMul: 0.125, ls: 3},
}

// The fixtures' sizes: hidden 64, 8 experts of 64, top-2; the hybrid's
// Mamba-2 layers have 8 heads of 16 in 2 groups, state 16, conv 4, chunks
// of 4 (so prompts span many chunks and end in a padded one).
const (
	gHidden, gHeads, gKV, gVocab, gExperts, gInter, gTopK, gShared = 64, 4, 2, 512, 8, 64, 2, 64
	gMHeads, gMHeadDim, gMGroups, gMState, gMConv, gChunk          = 8, 16, 2, 16, 4, 4
)

// TestRegenGraniteFixtures writes testdata/fixtures/granite* from the
// float64 transcription (ref_granite_test.go). Run with MLXMOE_REGEN=1.
func TestRegenGraniteFixtures(t *testing.T) {
	if os.Getenv("MLXMOE_REGEN") != "1" {
		t.Skip("set MLXMOE_REGEN=1 to rewrite the granite fixtures")
	}
	src := fixture.Dir(t, "fixtures/qwen3_moe-4bit") // prompts and tokenizer
	prompts := fixture.LoadReference(t, src)
	for _, s := range granSpecs {
		t.Run(s.name, func(t *testing.T) {
			writeGraniteFixture(t, s, prompts, filepath.Join(fixture.Root(), "fixtures", s.name))
		})
	}
}

// granBuilder makes a checkpoint's tensors and, beside them, the float64
// values they hold (dequantized or bf16-rounded) for the reference.
type granBuilder struct {
	mlx     bool
	rng     *rand.Rand
	tensors map[string]fixture.Tensor
	quant   map[string]any
}

func (b *granBuilder) random(n int, mean, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(mean + std*b.rng.NormFloat64())
	}
	return v
}

// bf16 stores v as BF16 and returns the stored values.
func (b *granBuilder) bf16(name string, shape []int, v []float32) []float64 {
	return storeBF16(b.tensors, name, shape, v)
}

func (b *granBuilder) vector(name string, v []float32) []float64 {
	return b.bf16(name, []int{len(v)}, v)
}

// matrix stores count stacked [rows, cols] matrices as module.weight:
// quantized (bits) in the MLX layout, else bf16. It returns them as
// [count][rows][cols] float64.
func (b *granBuilder) matrix(module string, count, rows, cols int, std float64, bits int) [][][]float64 {
	v := b.random(count*rows*cols, 0, std)
	shape := []int{rows, cols}
	if count > 1 {
		shape = []int{count, rows, cols}
	}
	out := make([][][]float64, count)
	if !b.mlx || bits == 0 {
		flat := b.bf16(module+".weight", shape, v)
		for e := range count {
			out[e] = make([][]float64, rows)
			for r := range rows {
				out[e][r] = flat[(e*rows+r)*cols : (e*rows+r+1)*cols]
			}
		}
		return out
	}
	m, err := kernels.Quantize(v, count*rows, cols, bits, 64)
	if err != nil {
		panic(err)
	}
	if bits != 4 {
		b.quant[module] = map[string]int{"group_size": 64, "bits": bits}
	}
	qshape := func(last int) []int { return append(append([]int{}, shape[:len(shape)-1]...), last) }
	w := make([]byte, 4*len(m.Q.W))
	for i, x := range m.Q.W {
		binary.LittleEndian.PutUint32(w[4*i:], x)
	}
	b.tensors[module+".weight"] = fixture.Tensor{DType: "U32", Shape: qshape(cols * bits / 32), Data: w}
	u16 := func(v []uint16) []byte {
		raw := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(raw[2*i:], x)
		}
		return raw
	}
	b.tensors[module+".scales"] = fixture.Tensor{DType: "BF16", Shape: qshape(cols / 64), Data: u16(m.Q.Scales)}
	b.tensors[module+".biases"] = fixture.Tensor{DType: "BF16", Shape: qshape(cols / 64), Data: u16(m.Q.Biases)}
	row := make([]float32, cols)
	for e := range count {
		out[e] = make([][]float64, rows)
		for r := range rows {
			m.Row(e*rows+r, row)
			out[e][r] = make([]float64, cols)
			for i, x := range row {
				out[e][r][i] = float64(x)
			}
		}
	}
	return out
}

func (b *granBuilder) linear(module string, rows, cols int, std float64, bits int) [][]float64 {
	return b.matrix(module, 1, rows, cols, std, bits)[0]
}

func (b *granBuilder) norm(name string, n int) []float64 {
	return b.vector(name, b.random(n, 1, 0.1))
}

// writeGraniteFixture writes the fixture s into dir, in testdata's form.
func writeGraniteFixture(t *testing.T, s granSpec, prompts *fixture.Reference, dir string) {
	b := &granBuilder{mlx: s.mlx, rng: rand.New(rand.NewPCG(s.seed, 7)), tensors: map[string]fixture.Tensor{}, quant: map[string]any{}}
	m := &refGranite{hidden: gHidden, heads: gHeads, kvHeads: gKV, headDim: gHidden / gHeads, topK: gTopK,
		eps: 1e-6, theta: 10000, rope: s.rope, embMul: s.embMul, resMul: s.resM, attnMul: s.attnMul, logitsScale: s.ls,
		mHeads: gMHeads, mHeadDim: gMHeadDim, mGroups: gMGroups, mState: gMState, mConv: gMConv, chunk: gChunk}
	layerTypes := []string{"attention", "attention"}
	if s.hybrid {
		layerTypes = []string{"mamba", "attention", "mamba", "mamba"}
	}
	m.embed = b.linear("model.embed_tokens", gVocab, gHidden, 0.3, 4)
	for l, kind := range layerTypes {
		p := fmt.Sprintf("model.layers.%d.", l)
		L := refLayer{kind: kind, inNorm: b.norm(p+"input_layernorm.weight", gHidden), postNorm: b.norm(p+"post_attention_layernorm.weight", gHidden)}
		if kind == "attention" {
			a, kv := p+"self_attn.", gKV*m.headDim
			L.q = b.linear(a+"q_proj", gHidden, gHidden, 0.125, 4)
			L.k = b.linear(a+"k_proj", kv, gHidden, 0.125, 4)
			L.v = b.linear(a+"v_proj", kv, gHidden, 0.125, 4)
			L.o = b.linear(a+"o_proj", gHidden, gHidden, 0.125, 4)
		} else {
			mp := p + "mamba."
			inner, ch := gMHeads*gMHeadDim, gMHeads*gMHeadDim+2*gMGroups*gMState
			L.inProj = b.linear(mp+"in_proj", inner+ch+gMHeads, gHidden, 0.125, 4)
			convShape := []int{ch, 1, gMConv} // HF; MLX stores [C, K, 1]
			if s.mlx {
				convShape = []int{ch, gMConv, 1}
			}
			flat := b.bf16(mp+"conv1d.weight", convShape, b.random(ch*gMConv, 0, 0.3))
			for c := range ch {
				L.conv = append(L.conv, flat[c*gMConv:(c+1)*gMConv])
			}
			L.convBias = b.vector(mp+"conv1d.bias", b.random(ch, 0, 0.1))
			aLog := make([]float32, gMHeads)
			for i := range aLog {
				aLog[i] = float32(-2 + 3.5*b.rng.Float64())
			}
			L.aLog = b.vector(mp+"A_log", aLog)
			L.d = b.vector(mp+"D", b.random(gMHeads, 1, 0.5))
			L.dtBias = b.vector(mp+"dt_bias", b.random(gMHeads, 0, 0.5))
			L.gnorm = b.norm(mp+"norm.weight", inner)
			L.outProj = b.linear(mp+"out_proj", gHidden, inner, 0.09, 4)
		}
		moe := p + "block_sparse_moe."
		switch {
		case s.dense && s.mlx:
			// mlx-lm turns the dense model's shared_mlp into mlp.*_proj.
			L.sharedGate = b.linear(p+"mlp.gate_proj", gShared, gHidden, 0.125, 4)
			L.sharedUp = b.linear(p+"mlp.up_proj", gShared, gHidden, 0.125, 4)
			L.sDwn = b.linear(p+"mlp.down_proj", gHidden, gShared, 0.125, 4)
		case s.dense:
		case s.mlx:
			L.router = b.linear(moe+"router.layer", gExperts, gHidden, 0.3, 8)
			L.gate = b.matrix(moe+"switch_mlp.gate_proj", gExperts, gInter, gHidden, 0.125, 4)
			L.up = b.matrix(moe+"switch_mlp.up_proj", gExperts, gInter, gHidden, 0.125, 4)
			L.down = b.matrix(moe+"switch_mlp.down_proj", gExperts, gHidden, gInter, 0.125, 4)
		default:
			L.router = b.linear(moe+"router.layer", gExperts, gHidden, 0.3, 8)
			// input_linear [E, 2I, H]: per expert the gate rows, then up.
			gu := b.matrix(moe+"input_linear", gExperts, 2*gInter, gHidden, 0.125, 0)
			for _, e := range gu {
				L.gate, L.up = append(L.gate, e[:gInter]), append(L.up, e[gInter:])
			}
			L.down = b.matrix(moe+"output_linear", gExperts, gHidden, gInter, 0.125, 0)
		}
		if s.hybrid && !(s.dense && s.mlx) {
			in := b.linear(p+"shared_mlp.input_linear", 2*gShared, gHidden, 0.125, 4)
			L.sharedGate, L.sharedUp = in[:gShared], in[gShared:]
			L.sDwn = b.linear(p+"shared_mlp.output_linear", gHidden, gShared, 0.125, 4)
		}
		m.layers = append(m.layers, L)
	}
	m.norm = b.norm("model.norm.weight", gHidden)
	m.head = m.embed
	if !s.tied {
		m.head = b.linear("lm_head", gVocab, gHidden, 0.5, 4)
	}

	cfg := map[string]any{
		"model_type": "granitemoe", "architectures": []string{"GraniteMoeForCausalLM"},
		"vocab_size": gVocab, "hidden_size": gHidden, "intermediate_size": gInter, "num_hidden_layers": len(layerTypes),
		"num_attention_heads": gHeads, "num_key_value_heads": gKV, "hidden_act": "silu", "max_position_embeddings": 1024,
		"rms_norm_eps": m.eps, "rope_theta": m.theta, "tie_word_embeddings": s.tied, "attention_bias": false,
		"embedding_multiplier": s.embMul, "residual_multiplier": s.resM, "attention_multiplier": s.attnMul,
		"logits_scaling": s.ls, "num_local_experts": gExperts, "num_experts_per_tok": gTopK, "torch_dtype": "bfloat16",
	}
	if s.hybrid {
		pos := "nope"
		if s.rope {
			pos = "rope"
		}
		cfg["model_type"], cfg["architectures"] = "granitemoehybrid", []string{"GraniteMoeHybridForCausalLM"}
		for k, v := range map[string]any{"shared_intermediate_size": gShared, "position_embedding_type": pos, "layer_types": layerTypes,
			"mamba_n_heads": gMHeads, "mamba_d_head": gMHeadDim, "mamba_n_groups": gMGroups, "mamba_d_state": gMState,
			"mamba_d_conv": gMConv, "mamba_expand": 2, "mamba_chunk_size": gChunk, "mamba_conv_bias": true, "mamba_proj_bias": false} {
			cfg[k] = v
		}
	}
	if s.dense {
		cfg["num_local_experts"] = 0
	}
	if s.mlx {
		q := map[string]any{"group_size": 64, "bits": 4, "mode": "affine"}
		for k, v := range b.quant {
			q[k] = v
		}
		cfg["quantization"], cfg["quantization_config"] = q, q
	}

	// The reference outputs.
	ref := map[string]any{
		"source":  fmt.Sprintf("float64 Go transcription of transformers %s (not transformers itself)", map[bool]string{false: "modeling_granitemoe.py", true: "modeling_granitemoehybrid.py"}[s.hybrid]),
		"dtype":   "float64",
		"fixture": s.name, "family": cfg["model_type"], "layout": map[bool]string{true: "mlx", false: "hf"}[s.mlx],
		"seed": s.seed, "generator": "model/granite_fixture_test.go TestRegenGraniteFixtures",
	}
	ref["prompts"], _ = refPrompts(prompts.Prompts, func(ids []int32) (*refTrace, error) {
		pass := m.forward(ids)
		routes := map[string][][]int32{}
		for l, r := range pass.routes {
			routes[fmt.Sprintf("model.layers.%d.block_sparse_moe.router", l)] = r
		}
		return &refTrace{logits: pass.logits, embedLast: pass.embLast, layerLast: pass.layerOut, routes: routes}, nil
	})
	greedy, _ := refGreedy(prompts.Prompts[1].IDs, func(ids []int32) ([]float64, error) {
		return m.forward(ids).logits[len(ids)-1], nil
	})
	ref["greedy"] = greedy

	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := fixture.WriteSafetensors(filepath.Join(tmp, "model.safetensors"), b.tensors); err != nil {
		t.Fatal(err)
	}
	st, err := os.ReadFile(filepath.Join(tmp, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	cfgJSON, _ := json.MarshalIndent(cfg, "", "  ")
	refJSON, err := json.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(fixture.Root(), "fixtures", "qwen3_moe-4bit")
	tok, err := os.ReadFile(filepath.Join(src, "tokenizer.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	tokCfg, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"config.json": append(cfgJSON, '\n'), "model.safetensors.gz": gz(st),
		"reference.json.gz": gz(refJSON), "tokenizer.json.gz": tok, "tokenizer_config.json": tokCfg} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: %d tensors, greedy %v (smallest gap %g)", s.name, len(b.tensors), greedy["new_ids"], slices.Min(greedy["top2_gaps"].([]float64)))
}

func gz(data []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}
