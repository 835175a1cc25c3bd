package model_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/sample"
)

// TestMLAMLXLayouts converts the HF bf16 fixtures into the two MLX layouts
// (quantized with the MLX algorithm, as mlx_lm.convert would) and checks
// that each loads to exactly the model its dequantized weights describe.
// It then measures how far quantization moves the logits from the bf16
// model: the tiny random fixtures amplify weight error (8-bit with bf16
// scales is about 0.6% relative error per weight, and moves their logits by
// several percent), so the check is that the error shrinks with more bits.
//
// "kv_b" is the older layout: kv_b_proj quantized as it is, whose key
// blocks the loader transposes and, when qk_nope_head_dim divides into
// groups, quantizes again as mlx-lm does. "split" is the newer one:
// kv_b_proj stored as embed_q [heads, kv_lora_rank, qk_nope_head_dim] and
// unembed_out [heads, v_head_dim, kv_lora_rank], each quantized along its
// last axis or left in bf16 when that axis does not divide into groups.
// qk_nope_head_dim is 32 here, so group size 64 covers the dense key
// blocks and group size 32 the quantized ones.
func TestMLAMLXLayouts(t *testing.T) {
	for _, fx := range []string{"deepseek_v3-hf-bf16", "glm4_moe_lite-hf-bf16"} {
		hfDir := fixture.Dir(t, "fixtures/"+fx)
		ref := fixture.LoadReference(t, hfDir)
		bf16 := mlaPromptLogits(t, hfDir, ref)
		var rms, count float64
		for _, l := range bf16 {
			for _, v := range l {
				rms += float64(v) * float64(v)
				count++
			}
		}
		rms = math.Sqrt(rms / count)
		for _, layout := range []string{"kv_b", "split"} {
			meanErr := map[int]float64{}
			for _, q := range []struct{ bits, gs int }{{8, 64}, {4, 32}} {
				t.Run(fmt.Sprintf("%s/%s-%dbit-g%d", fx, layout, q.bits, q.gs), func(t *testing.T) {
					mlxDir, simDir := t.TempDir(), t.TempDir()
					convertMLAToMLX(t, hfDir, mlxDir, simDir, layout, q.bits, q.gs)
					got := mlaPromptLogits(t, mlxDir, ref)
					sim := mlaPromptLogits(t, simDir, ref)
					var layoutDiff, maxErr, sumErr, agree, positions float64
					vocab := len(ref.Prompts[0].LastLogits)
					for i := range got {
						layoutDiff = math.Max(layoutDiff, maxAbsDiff(got[i], sim[i]))
						maxErr = math.Max(maxErr, maxAbsDiff(got[i], bf16[i]))
						for j := range got[i] {
							sumErr += math.Abs(float64(got[i][j] - bf16[i][j]))
						}
						for p := 0; p < len(got[i]); p += vocab {
							if sample.Argmax(got[i][p:p+vocab]) == sample.Argmax(bf16[i][p:p+vocab]) {
								agree++
							}
							positions++
						}
					}
					meanErr[q.bits] = sumErr / count
					t.Logf("vs its dequantized weights in HF layout: max |Δ| %.2g; vs bf16: mean |Δ| %.3g, max |Δ| %.3g (rms logit %.3g), same argmax at %.0f of %.0f positions",
						layoutDiff, meanErr[q.bits], maxErr, rms, agree, positions)
					if layoutDiff > 1e-5 {
						t.Errorf("the MLX layout loads to a different model than its dequantized weights: logits differ by %g", layoutDiff)
					}
				})
			}
			if meanErr[8] == 0 || meanErr[8] > meanErr[4]/3 || meanErr[8] > 0.15*rms {
				t.Errorf("%s %s: mean logit error %.3g at 8 bits, %.3g at 4 bits (rms logit %.3g): expected 8-bit error below 15%% of the rms and a third of the 4-bit error",
					fx, layout, meanErr[8], meanErr[4], rms)
			}
		}
	}
}

// mlaPromptLogits returns every position's logits for each reference prompt.
func mlaPromptLogits(t *testing.T, dir string, ref *fixture.Reference) [][]float32 {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e := cpu.New()
	rn := model.NewRunner(m, e)
	var out [][]float32
	for _, p := range ref.Prompts {
		logits, err := rn.Forward(m.NewCache(e, len(p.IDs)), p.IDs, true)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, logits)
	}
	return out
}

// stTensor is one tensor of a safetensors file being written.
type stTensor struct {
	dtype string
	shape []int
	data  []byte
}

func f32Tensor(v []float32, shape ...int) stTensor {
	return stTensor{"F32", shape, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))}
}

func bf16Tensor(v []float32, shape ...int) stTensor {
	b := make([]uint16, len(v))
	for i, x := range v {
		b[i] = kernels.F32ToBF16(x)
	}
	return stTensor{"BF16", shape, unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), 2*len(b))}
}

// writeMLACheckpoint writes tensors as dir/model.safetensors.
func writeMLACheckpoint(t *testing.T, dir string, tensors map[string]stTensor) {
	t.Helper()
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	var data []byte
	for _, n := range names {
		x := tensors[n]
		header[n] = map[string]any{"dtype": x.dtype, "shape": x.shape, "data_offsets": []int{len(data), len(data) + len(x.data)}}
		data = append(data, x.data...)
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	writeSafetensors(t, filepath.Join(dir, "model.safetensors"), string(h), data)
}

// readMLAFloats reads every tensor of a checkpoint as float32 values.
func readMLAFloats(t *testing.T, dir string) (map[string][]float32, map[string][]int) {
	t.Helper()
	ix, err := model.OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	vals, shapes := map[string][]float32{}, map[string][]int{}
	for _, n := range ix.Names() {
		info, _ := ix.Tensor(n)
		b, err := ix.ReadBytes(info)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, info.Elements())
		switch info.DType {
		case model.BF16:
			for i := range v {
				v[i] = kernels.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
			}
		case model.F32:
			for i := range v {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		default:
			t.Fatalf("%s: unexpected dtype %s in the HF fixture", n, info.DType)
		}
		vals[n], shapes[n] = v, info.Shape
	}
	return vals, shapes
}

// quantized is a weight quantized the MLX way: the tensors to store and
// the values they dequantize to.
type quantized struct {
	weight, scales, biases stTensor
	deq                    []float32
}

// quantize quantizes a [..., cols] weight along its last axis.
func quantizeMLX(t *testing.T, v []float32, shape []int, bits, gs int) quantized {
	t.Helper()
	cols := shape[len(shape)-1]
	rows := len(v) / cols
	m, err := kernels.Quantize(v, rows, cols, bits, gs)
	if err != nil {
		t.Fatal(err)
	}
	lead := shape[:len(shape)-1]
	q := quantized{deq: make([]float32, len(v))}
	for r := 0; r < rows; r++ {
		m.Row(r, q.deq[r*cols:(r+1)*cols])
	}
	u16 := func(s []uint16) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 2*len(s)) }
	q.weight = stTensor{"U32", append(append([]int{}, lead...), cols*bits/32), unsafe.Slice((*byte)(unsafe.Pointer(&m.Q.W[0])), 4*len(m.Q.W))}
	q.scales = stTensor{"BF16", append(append([]int{}, lead...), cols/gs), u16(m.Q.Scales)}
	q.biases = stTensor{"BF16", append(append([]int{}, lead...), cols/gs), u16(m.Q.Biases)}
	return q
}

var (
	expertName = regexp.MustCompile(`^(.*\.mlp\.)experts\.(\d+)\.(\w+)\.weight$`)
	// Modules mlx-lm quantizes (nn.Linear, nn.Embedding, SwitchLinear,
	// MultiLinear); the MoE router (MoEGate) and the norms stay as they are.
	quantizable = regexp.MustCompile(`(embed_tokens|lm_head|_proj)\.weight$`)
)

// convertMLAToMLX writes the HF checkpoint hfDir as an MLX conversion (layout
// "kv_b" or "split", bits-bit, group size gs) to mlxDir, and to simDir the
// model it should load as: the same config in HF layout with every weight
// replaced by the values the MLX one dequantizes to (for "kv_b", the key
// blocks as re-quantized at load).
func convertMLAToMLX(t *testing.T, hfDir, mlxDir, simDir, layout string, bits, gs int) {
	t.Helper()
	vals, shapes := readMLAFloats(t, hfDir)
	var cfg map[string]any
	raw, err := os.ReadFile(filepath.Join(hfDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	heads := int(cfg["num_attention_heads"].(float64))
	L := int(cfg["kv_lora_rank"].(float64))
	dn := int(cfg["qk_nope_head_dim"].(float64))
	dv := int(cfg["v_head_dim"].(float64))

	mlx, sim := map[string]stTensor{}, map[string]stTensor{}
	// put stores a weight under module in the MLX checkpoint, quantized when
	// its last axis divides into groups (else in bf16, as mlx_lm.convert
	// leaves it), and returns the values it dequantizes to.
	put := func(module string, v []float32, shape []int) []float32 {
		if shape[len(shape)-1]%gs != 0 {
			mlx[module+".weight"] = bf16Tensor(v, shape...)
			return v
		}
		q := quantizeMLX(t, v, shape, bits, gs)
		mlx[module+".weight"], mlx[module+".scales"], mlx[module+".biases"] = q.weight, q.scales, q.biases
		return q.deq
	}
	experts := map[string][]string{} // switch_mlp module -> its HF expert tensors in order
	for name, v := range vals {
		shape := shapes[name]
		switch {
		case expertName.MatchString(name):
			sm := expertName.FindStringSubmatch(name)
			module := sm[1] + "switch_mlp." + sm[3]
			experts[module] = append(experts[module], name)
		case strings.HasSuffix(name, "kv_b_proj.weight"):
			module := strings.TrimSuffix(name, ".weight")
			p := strings.TrimSuffix(module, "kv_b_proj")
			simKVB := make([]float32, len(v))
			if layout == "kv_b" {
				deq := put(module, v, shape)
				copy(simKVB, deq)
				if dn%gs == 0 {
					// The loader's re-quantized key blocks.
					for h := 0; h < heads; h++ {
						kT := make([]float32, L*dn)
						for i := 0; i < dn; i++ {
							for c := 0; c < L; c++ {
								kT[c*dn+i] = kernels.BF16ToF32(kernels.F32ToBF16(deq[(h*(dn+dv)+i)*L+c]))
							}
						}
						kq := quantizeMLX(t, kT, []int{L, dn}, bits, gs)
						for i := 0; i < dn; i++ {
							for c := 0; c < L; c++ {
								simKVB[(h*(dn+dv)+i)*L+c] = kq.deq[c*dn+i]
							}
						}
					}
				}
			} else {
				// mlx-lm's sanitize: per head the key block transposed, the value block as is.
				embedQ := make([]float32, heads*L*dn)
				unembed := make([]float32, heads*dv*L)
				for h := 0; h < heads; h++ {
					for i := 0; i < dn; i++ {
						for c := 0; c < L; c++ {
							embedQ[(h*L+c)*dn+i] = v[(h*(dn+dv)+i)*L+c]
						}
					}
					copy(unembed[h*dv*L:(h+1)*dv*L], v[(h*(dn+dv)+dn)*L:(h+1)*(dn+dv)*L])
				}
				eq := put(p+"embed_q", embedQ, []int{heads, L, dn})
				uo := put(p+"unembed_out", unembed, []int{heads, dv, L})
				for h := 0; h < heads; h++ {
					for i := 0; i < dn; i++ {
						for c := 0; c < L; c++ {
							simKVB[(h*(dn+dv)+i)*L+c] = eq[(h*L+c)*dn+i]
						}
					}
					copy(simKVB[(h*(dn+dv)+dn)*L:(h+1)*(dn+dv)*L], uo[h*dv*L:(h+1)*dv*L])
				}
			}
			sim[name] = f32Tensor(simKVB, shape...)
		case quantizable.MatchString(name):
			sim[name] = f32Tensor(put(strings.TrimSuffix(name, ".weight"), v, shape), shape...)
		default:
			mlx[name] = bf16Tensor(v, shape...)
			sim[name] = f32Tensor(v, shape...)
		}
	}
	expertIndex := func(name string) int {
		var e int
		fmt.Sscan(expertName.FindStringSubmatch(name)[2], &e)
		return e
	}
	for module, names := range experts {
		sort.Slice(names, func(a, b int) bool { return expertIndex(names[a]) < expertIndex(names[b]) })
		shape := append([]int{len(names)}, shapes[names[0]]...)
		var stacked []float32
		for _, n := range names {
			stacked = append(stacked, vals[n]...)
		}
		deq := put(module, stacked, shape)
		per := len(deq) / len(names)
		for i, n := range names {
			sim[n] = f32Tensor(deq[i*per:(i+1)*per], shapes[n]...)
		}
	}
	writeMLACheckpoint(t, mlxDir, mlx)
	writeMLACheckpoint(t, simDir, sim)
	for _, dir := range []string{mlxDir, simDir} {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fixture.EditConfig(t, mlxDir, func(c map[string]any) {
		c["quantization"] = map[string]any{"group_size": gs, "bits": bits, "mode": "affine"}
	})
}

// TestMLAExpandedForm checks the absorbed attention against transformers'
// expanded form, written out naively here, on the parts of the
// architecture the fixtures do not reach: a deepseek_v3 variant with
// q_lora_rank null (plain q_proj), rope_interleave false, YaRN rope scaling
// whose mscale_all_dim also scales the attention logits, and attention
// biases. It compares the output of decoder layer 0 (MLA and a dense MLP)
// at every position.
func TestMLAExpandedForm(t *testing.T) {
	hfDir := fixture.Dir(t, "fixtures/deepseek_v3-hf-bf16")
	vals, shapes := readMLAFloats(t, hfDir)
	raw, err := os.ReadFile(filepath.Join(hfDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	num := func(k string) int { return int(cfg[k].(float64)) }
	H, L, dn, dr, dv, hidden := num("num_attention_heads"), num("kv_lora_rank"), num("qk_nope_head_dim"), num("qk_rope_head_dim"), num("v_head_dim"), num("hidden_size")
	const factor, mscale, mscaleAll, origMax = 4.0, 1.0, 0.8, 16

	rng := rand.New(rand.NewPCG(5, 6))
	randn := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	// Per layer: q_proj replaces q_a_proj, q_a_layernorm and q_b_proj, and
	// kv_a_proj_with_mqa and o_proj get biases.
	for l := 0; l < num("num_hidden_layers"); l++ {
		p := fmt.Sprintf("model.layers.%d.self_attn.", l)
		for _, n := range []string{"q_a_proj.weight", "q_a_layernorm.weight", "q_b_proj.weight"} {
			delete(vals, p+n)
		}
		vals[p+"q_proj.weight"], shapes[p+"q_proj.weight"] = randn(H*(dn+dr)*hidden, 0.1), []int{H * (dn + dr), hidden}
		vals[p+"kv_a_proj_with_mqa.bias"], shapes[p+"kv_a_proj_with_mqa.bias"] = randn(L+dr, 0.1), []int{L + dr}
		vals[p+"o_proj.bias"], shapes[p+"o_proj.bias"] = randn(hidden, 0.1), []int{hidden}
	}
	tensors := map[string]stTensor{}
	for n, v := range vals {
		tensors[n] = f32Tensor(v, shapes[n]...)
	}
	dir := t.TempDir()
	writeMLACheckpoint(t, dir, tensors)
	cfg["q_lora_rank"] = nil
	cfg["rope_interleave"] = false
	cfg["attention_bias"] = true
	cfg["rope_scaling"] = map[string]any{"type": "yarn", "factor": factor, "mscale": mscale, "mscale_all_dim": mscaleAll,
		"original_max_position_embeddings": origMax, "beta_fast": 32, "beta_slow": 1}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	fixture.EditConfig(t, dir, func(c map[string]any) {
		for k, v := range cfg {
			c[k] = v
		}
	})

	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ids := fixture.LoadReference(t, hfDir).Prompts[1].IDs
	n := len(ids)
	var got []float32
	rn := model.NewRunner(m, cpu.New())
	rn.Trace = &model.Trace{LayerOutput: func(l int, rows []float32) {
		if l == 0 {
			got = append([]float32(nil), rows...)
		}
	}}
	if _, err := rn.Forward(m.NewCache(rn.E, n), ids, false); err != nil {
		t.Fatal(err)
	}

	// The expanded form, in float64, from the stored tensors.
	w := func(name string) []float64 {
		v, ok := vals["model.layers.0."+name]
		if !ok {
			v = vals[name]
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	matvec := func(m []float64, x []float64) []float64 {
		out := make([]float64, len(m)/len(x))
		for r := range out {
			for c, xc := range x {
				out[r] += m[r*len(x)+c] * xc
			}
		}
		return out
	}
	rmsnorm := rmsNorm64
	yarnMScale := func(m float64) float64 { return 0.1*m*math.Log(factor) + 1 }
	inv, attnFactor := kernels.RopeInvFreq(dr, cfg["rope_theta"].(float64), &kernels.YaRN{Factor: factor, BetaFast: 32, BetaSlow: 1,
		MScale: mscale, MScaleAllDim: mscaleAll, OriginalMaxPositions: origMax})
	// rotate_half rope: pairs (i, i+dr/2).
	rope := func(x []float64, pos int) []float64 {
		out := make([]float64, dr)
		for i := 0; i < dr/2; i++ {
			a := float64(pos) * float64(inv[i])
			c, s := math.Cos(a)*float64(attnFactor), math.Sin(a)*float64(attnFactor)
			out[i] = x[i]*c - x[i+dr/2]*s
			out[i+dr/2] = x[i+dr/2]*c + x[i]*s
		}
		return out
	}
	eps := cfg["rms_norm_eps"].(float64)
	embed, wq, wkva, bkva, wkvb, wo, bo := w("model.embed_tokens.weight"), w("self_attn.q_proj.weight"), w("self_attn.kv_a_proj_with_mqa.weight"),
		w("self_attn.kv_a_proj_with_mqa.bias"), w("self_attn.kv_b_proj.weight"), w("self_attn.o_proj.weight"), w("self_attn.o_proj.bias")
	scale := math.Pow(float64(dn+dr), -0.5) * yarnMScale(mscaleAll) * yarnMScale(mscaleAll)
	xs := make([][]float64, n)
	qs, ks, vs := make([][]float64, n), make([][]float64, n), make([][]float64, n) // per position, heads concatenated
	for p, id := range ids {
		xs[p] = embed[int(id)*hidden : (int(id)+1)*hidden]
		h := rmsnorm(xs[p], w("input_layernorm.weight"), eps)
		q := matvec(wq, h)
		kv := matvec(wkva, h)
		for i := range kv {
			kv[i] += bkva[i]
		}
		kRope := rope(kv[L:], p)
		kvb := matvec(wkvb, rmsnorm(kv[:L], w("self_attn.kv_a_layernorm.weight"), 1e-6))
		for hd := 0; hd < H; hd++ {
			qh := q[hd*(dn+dr) : (hd+1)*(dn+dr)]
			qs[p] = append(append(qs[p], qh[:dn]...), rope(qh[dn:], p)...)
			ks[p] = append(append(ks[p], kvb[hd*(dn+dv):hd*(dn+dv)+dn]...), kRope...)
			vs[p] = append(vs[p], kvb[hd*(dn+dv)+dn:(hd+1)*(dn+dv)]...)
		}
	}
	var worst float64
	for p := range ids {
		o := make([]float64, H*dv)
		for hd := 0; hd < H; hd++ {
			q := qs[p][hd*(dn+dr) : (hd+1)*(dn+dr)]
			scores := make([]float64, p+1)
			top := math.Inf(-1)
			for j := range scores {
				for i, qi := range q {
					scores[j] += qi * ks[j][hd*(dn+dr)+i]
				}
				scores[j] *= scale
				top = math.Max(top, scores[j])
			}
			var sum float64
			for j := range scores {
				scores[j] = math.Exp(scores[j] - top)
				sum += scores[j]
			}
			for j, s := range scores {
				for i := 0; i < dv; i++ {
					o[hd*dv+i] += s / sum * vs[j][hd*dv+i]
				}
			}
		}
		x := append([]float64(nil), xs[p]...)
		for i, v := range matvec(wo, o) {
			x[i] += v + bo[i]
		}
		h := rmsnorm(x, w("post_attention_layernorm.weight"), eps)
		g, u := matvec(w("mlp.gate_proj.weight"), h), matvec(w("mlp.up_proj.weight"), h)
		for i := range g {
			g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
		}
		var scaleX float64
		for i, v := range matvec(w("mlp.down_proj.weight"), g) {
			x[i] += v
			scaleX = math.Max(scaleX, math.Abs(x[i]))
		}
		for i, v := range x {
			worst = math.Max(worst, math.Abs(float64(got[p*hidden+i])-v)/scaleX)
		}
	}
	t.Logf("layer 0 output vs the expanded form: max relative |Δ| %.2g over %d positions", worst, n)
	if worst > 1e-4 {
		t.Errorf("layer 0 output differs from the expanded form by %g (relative)", worst)
	}
}

// TestMLALoadErrors checks that configs and tensors the MLA families cannot
// use are reported, naming what is wrong.
func TestMLALoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, fixture string
		edit          func(t *testing.T, dir string)
		want          string
	}{
		{"no kv_lora_rank", "deepseek_v3-hf-bf16", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { delete(c, "kv_lora_rank") })
		}, "latent attention needs positive kv_lora_rank"},
		{"odd rope dim", "deepseek_v3-hf-bf16", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["qk_rope_head_dim"] = 31 })
		}, "even qk_rope_head_dim"},
		{"v_head_dim not matching the weights", "glm4_moe_lite-hf-bf16", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["v_head_dim"] = 16 })
		}, "o_proj.weight has shape [128 128], expected [128 64]"},
		{"mlp_layer_types not a dense prefix", "glm4_moe_lite-hf-bf16", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["mlp_layer_types"] = []string{"dense", "dense", "sparse"} })
		}, `mlp_layer_types[1] is "dense"`},
		{"mlp_layer_types of another length", "glm4_moe_lite-hf-bf16", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["mlp_layer_types"] = []string{"dense", "sparse"} })
		}, "mlp_layer_types has 2 entries"},
		{"rope_interleave not a bool", "deepseek_v3-hf-bf16", func(t *testing.T, dir string) {
			fixture.EditConfig(t, dir, func(c map[string]any) { c["rope_interleave"] = "yes" })
		}, "rope_interleave"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+tc.fixture)
			tc.edit(t, dir)
			m, err := model.Load(dir)
			if err == nil {
				m.Close()
				t.Fatalf("loaded a broken checkpoint")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
