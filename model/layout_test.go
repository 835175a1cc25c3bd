package model_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestQwen3_5HuggingFaceLayout rewrites the MLX Qwen3.5 fixture into the
// Hugging Face layout (dequantized float weights, model.language_model.
// prefix, zero-centred norms, [C, 1, K] conv1d, fused gate_up_proj experts)
// and checks it gives the reference logits too.
func TestQwen3_5HuggingFaceLayout(t *testing.T) {
	src := fixture.Dir(t, "fixtures/qwen3_5_moe-4bit")
	m, err := model.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c := m.Config
	dst := t.TempDir()
	out := map[string]fixture.Tensor{}
	dense := func(x *kernels.Matrix) []float32 {
		v := make([]float32, x.Rows*x.Cols)
		for r := 0; r < x.Rows; r++ {
			x.Row(r, v[r*x.Cols:])
		}
		return v
	}
	put := func(name string, x *kernels.Matrix) {
		out[name] = fixture.F32([]int{x.Rows, x.Cols}, dense(x))
	}
	unshift := func(name string, v []float32) {
		z := make([]float32, len(v))
		for i := range v {
			z[i] = v[i] - 1
		}
		out[name] = fixture.F32([]int{len(v)}, z)
	}
	put("model.language_model.embed_tokens.weight", m.Embed)
	put("lm_head.weight", m.Head)
	unshift("model.language_model.norm.weight", m.Norm)
	for l, layer := range m.Layers {
		p := "model.language_model.layers." + itoa(l) + "."
		unshift(p+"input_layernorm.weight", layer.InputNorm)
		unshift(p+"post_attention_layernorm.weight", layer.PostNorm)
		switch mx := layer.Mixer.(type) {
		case *model.Attention:
			for name, w := range map[string]*kernels.Matrix{"k_proj": mx.K, "v_proj": mx.V, "o_proj": mx.O} {
				put(p+"self_attn."+name+".weight", w)
			}
			// q_proj is [query | gate] per head; the model holds the parts
			// split.
			q, g := dense(mx.Q), dense(mx.QGate)
			var qg []float32
			hd := mx.HeadDim * c.HiddenSize
			for h := 0; h < mx.Heads; h++ {
				qg = append(append(qg, q[h*hd:(h+1)*hd]...), g[h*hd:(h+1)*hd]...)
			}
			out[p+"self_attn.q_proj.weight"] = fixture.F32([]int{2 * mx.Heads * mx.HeadDim, c.HiddenSize}, qg)
			unshift(p+"self_attn.q_norm.weight", mx.QNorm)
			unshift(p+"self_attn.k_norm.weight", mx.KNorm)
		case *model.GatedDeltaNet:
			a := p + "linear_attn."
			qkv := append(append(dense(mx.Q), dense(mx.K)...), dense(mx.V)...)
			out[a+"in_proj_qkv.weight"] = fixture.F32([]int{mx.Q.Rows + mx.K.Rows + mx.V.Rows, c.HiddenSize}, qkv)
			for name, w := range map[string]*kernels.Matrix{"in_proj_z": mx.Z, "in_proj_b": mx.B, "in_proj_a": mx.A} {
				put(a+name+".weight", w)
			}
			put(a+"out_proj.weight", mx.Out)
			out[a+"conv1d.weight"] = fixture.F32([]int{len(mx.Conv) / mx.ConvKernel, 1, mx.ConvKernel}, mx.Conv)
			out[a+"A_log"] = fixture.F32([]int{len(mx.ALog)}, mx.ALog)
			out[a+"dt_bias"] = fixture.F32([]int{len(mx.DtBias)}, mx.DtBias)
			out[a+"norm.weight"] = fixture.F32([]int{len(mx.Norm)}, mx.Norm)
		}
		moe := layer.FFN.(*model.MoE)
		put(p+"mlp.gate.weight", moe.Router)
		put(p+"mlp.shared_expert_gate.weight", moe.SharedGate)
		put(p+"mlp.shared_expert.gate_proj.weight", moe.Shared.Gate)
		put(p+"mlp.shared_expert.up_proj.weight", moe.Shared.Up)
		put(p+"mlp.shared_expert.down_proj.weight", moe.Shared.Down)
		var gateUp, down []float32
		for e := 0; e < c.NumExperts; e++ {
			g, u, d := moe.Experts.Expert(int32(e))
			gateUp = append(append(gateUp, dense(g)...), dense(u)...)
			down = append(down, dense(d)...)
		}
		inter := c.MoEIntermediateSize
		out[p+"mlp.experts.gate_up_proj"] = fixture.F32([]int{c.NumExperts, 2 * inter, c.HiddenSize}, gateUp)
		out[p+"mlp.experts.down_proj"] = fixture.F32([]int{c.NumExperts, c.HiddenSize, inter}, down)
	}
	if err := fixture.WriteSafetensors(filepath.Join(dst, "model.safetensors"), out); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	data, _ := os.ReadFile(filepath.Join(src, "config.json"))
	json.Unmarshal(data, &cfg)
	delete(cfg, "quantization")
	delete(cfg, "quantization_config")
	data, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(dst, "config.json"), data, 0o644)

	hf, err := model.Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	ref := fixture.LoadReference(t, src)
	rn := model.NewRunner(hf, cpu.New())
	for i, p := range ref.Prompts {
		logits, err := rn.Forward(hf.NewCache(rn.E, len(p.IDs)), p.IDs, false)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(logits, p.LastLogits); d > logitTol {
			t.Errorf("prompt %d: HF-layout logits differ by %g", i, d)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
