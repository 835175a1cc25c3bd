package model_test

// A float64 transcription of transformers' PhiMoE forward
// (src/transformers/models/phimoe/modeling_phimoe.py: PhimoeModel with
// PhimoeRotaryEmbedding, LlamaAttention-style attention, sparsemixer,
// MixtralExperts, nn.LayerNorm), written from the Python and sharing no
// code with the engine, and the generator of the phimoe fixtures whose
// reference.json it computes. No transformers oracle was available when
// these were made; the fixtures say so in their "source" field.

import (
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// phiRefConfig is what the transcription reads from config.json.
type phiRefConfig struct {
	vocab, hidden, layers, heads, kvHeads, inter, experts int
	eps, theta, jitter                                    float64
	orig                                                  int
	short, long                                           []float64
	shortM, longM                                         float64
}

func (c *phiRefConfig) headDim() int { return c.hidden / c.heads }

// phiRefWeights are the dequantized weights under Hugging Face's names.
type phiRefWeights map[string][]float64

// phiRefOut is what one forward pass over a whole sequence yields.
type phiRefOut struct {
	logits    [][]float64 // per position
	embedLast []float64
	layerLast [][]float64    // per layer, last position
	routes    [][][2]int     // per layer, per position: sparsemixer's two experts
	margin    float64        // closest any mask or argmax decision came to flipping
	marginAt  string         // where
	weights   [][][2]float64 // per layer, per position
}

// matvec: W [rows, len(x)] times x, plus bias b when not nil (nn.Linear).
func matvec(w []float64, rows int, x []float64, b []float64) []float64 {
	out := make([]float64, rows)
	cols := len(x)
	for r := range out {
		var s float64
		for c, v := range x {
			s += w[r*cols+c] * v
		}
		if b != nil {
			s += b[r]
		}
		out[r] = s
	}
	return out
}

// layerNorm is nn.LayerNorm(elementwise_affine=True).
func layerNorm(x, w, b []float64, eps float64) []float64 {
	var mean, v float64
	for _, a := range x {
		mean += a
	}
	mean /= float64(len(x))
	for _, a := range x {
		v += (a - mean) * (a - mean)
	}
	v /= float64(len(x))
	out := make([]float64, len(x))
	for i, a := range x {
		out[i] = (a-mean)/math.Sqrt(v+eps)*w[i] + b[i]
	}
	return out
}

// phiRefForward runs the model over ids from position 0 with no cache, as
// transformers' forward does: the rotary table is chosen by seq_len =
// max(position_ids)+1 = len(ids).
func phiRefForward(c *phiRefConfig, w phiRefWeights, ids []int32) *phiRefOut {
	n, h, hd := len(ids), c.hidden, c.headDim()
	out := &phiRefOut{margin: math.Inf(1)}
	note := func(m float64, where string) {
		if m = math.Abs(m); m < out.margin {
			out.margin, out.marginAt = m, where
		}
	}
	// PhimoeRotaryEmbedding: inv_freq = 1/(ext_factors * base^(2i/dim)),
	// ext_factors and mscale long when seq_len > original_max.
	factors, mscale := c.short, c.shortM
	if n > c.orig {
		factors, mscale = c.long, c.longM
	}
	half := hd / 2
	inv := make([]float64, half)
	for i := range inv {
		inv[i] = 1 / (factors[i] * math.Pow(c.theta, float64(2*i)/float64(hd)))
	}
	rope := func(v []float64, pos int) { // q*cos + rotate_half(q)*sin, emb = cat(freqs, freqs)
		r := make([]float64, hd)
		for j := 0; j < hd; j++ {
			a := float64(pos) * inv[j%half]
			var rot float64 // rotate_half: cat(-x2, x1)
			if j < half {
				rot = -v[j+half]
			} else {
				rot = v[j-half]
			}
			r[j] = v[j]*math.Cos(a)*mscale + rot*math.Sin(a)*mscale
		}
		copy(v, r)
	}
	x := make([][]float64, n)
	emb := w["model.embed_tokens.weight"]
	for t, id := range ids {
		x[t] = slices.Clone(emb[int(id)*h : (int(id)+1)*h])
	}
	out.embedLast = slices.Clone(x[n-1])
	kvd := c.kvHeads * hd
	for l := 0; l < c.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		get := func(s string) []float64 { return w[p+s] }
		// Attention (LlamaAttention: biases on q/k/v/o, GQA, causal).
		q, k, v := make([][]float64, n), make([][]float64, n), make([][]float64, n)
		for t := 0; t < n; t++ {
			hn := layerNorm(x[t], get("input_layernorm.weight"), get("input_layernorm.bias"), c.eps)
			q[t] = matvec(get("self_attn.q_proj.weight"), h, hn, get("self_attn.q_proj.bias"))
			k[t] = matvec(get("self_attn.k_proj.weight"), kvd, hn, get("self_attn.k_proj.bias"))
			v[t] = matvec(get("self_attn.v_proj.weight"), kvd, hn, get("self_attn.v_proj.bias"))
			for hh := 0; hh < c.heads; hh++ {
				rope(q[t][hh*hd:(hh+1)*hd], t)
			}
			for g := 0; g < c.kvHeads; g++ {
				rope(k[t][g*hd:(g+1)*hd], t)
			}
		}
		group := c.heads / c.kvHeads
		for t := 0; t < n; t++ {
			att := make([]float64, h)
			for hh := 0; hh < c.heads; hh++ {
				g := hh / group
				qh := q[t][hh*hd : (hh+1)*hd]
				scores := make([]float64, t+1)
				m := math.Inf(-1)
				for s := 0; s <= t; s++ {
					var d float64
					for i := 0; i < hd; i++ {
						d += qh[i] * k[s][g*hd+i]
					}
					scores[s] = d / math.Sqrt(float64(hd))
					m = math.Max(m, scores[s])
				}
				var sum float64
				for s := range scores {
					scores[s] = math.Exp(scores[s] - m)
					sum += scores[s]
				}
				for s := range scores {
					for i := 0; i < hd; i++ {
						att[hh*hd+i] += scores[s] / sum * v[s][g*hd+i]
					}
				}
			}
			o := matvec(get("self_attn.o_proj.weight"), h, att, get("self_attn.o_proj.bias"))
			for i := range o {
				x[t][i] += o[i]
			}
		}
		// Sparse MoE block: router, sparsemixer, SwiGLU experts.
		var routes [][2]int
		var weights [][2]float64
		for t := 0; t < n; t++ {
			hn := layerNorm(x[t], get("post_attention_layernorm.weight"), get("post_attention_layernorm.bias"), c.eps)
			logits := matvec(get("block_sparse_moe.gate.weight"), c.experts, hn, nil)
			ids, ws := sparsemixerRef(logits, c.jitter, func(m float64, what string) {
				note(m, fmt.Sprintf("layer %d token %d: %s", l, t, what))
			})
			routes, weights = append(routes, ids), append(weights, ws)
			y := make([]float64, h)
			for k, e := range ids {
				q := fmt.Sprintf("block_sparse_moe.experts.%d.", e)
				g := matvec(get(q+"w1.weight"), c.inter, hn, nil)
				u := matvec(get(q+"w3.weight"), c.inter, hn, nil)
				for i := range g {
					g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
				}
				d := matvec(get(q+"w2.weight"), h, g, nil)
				for i := range y {
					y[i] += ws[k] * d[i]
				}
			}
			for i := range y {
				x[t][i] += y[i]
			}
		}
		out.routes = append(out.routes, routes)
		out.weights = append(out.weights, weights)
		out.layerLast = append(out.layerLast, slices.Clone(x[n-1]))
	}
	for t := 0; t < n; t++ {
		hn := layerNorm(x[t], w["model.norm.weight"], w["model.norm.bias"], c.eps)
		out.logits = append(out.logits, matvec(w["lm_head.weight"], c.vocab, hn, w["lm_head.bias"]))
	}
	return out
}

// sparsemixerRef is sparsemixer(training=False) in float64: the mask
// (max-s)/clamp(|s|, min=max) > 2*jitter, masked_fill(-inf), softmax,
// gather; then the same with the first choice scattered to -inf. note
// gets each decision's distance from flipping.
func sparsemixerRef(s []float64, jitter float64, note func(float64, string)) ([2]int, [2]float64) {
	var ids [2]int
	var ws [2]float64
	masked := slices.Clone(s)
	for round := 0; round < 2; round++ {
		top := 0
		for i := range masked {
			if masked[i] > masked[top] {
				top = i
			}
		}
		for i := range masked {
			if i != top && !math.IsInf(masked[i], -1) {
				note(masked[top]-masked[i], "argmax")
			}
		}
		m := masked[top]
		gates := make([]float64, len(s))
		var sum float64
		for j := range s {
			ratio := (m - s[j]) / math.Max(math.Abs(s[j]), m)
			if !math.IsInf(masked[j], -1) && j != top {
				note(ratio-2*jitter, "mask")
			}
			if ratio > 2*jitter || math.IsInf(masked[j], -1) {
				gates[j] = math.Inf(-1)
				continue
			}
			gates[j] = math.Exp(masked[j] - m)
			sum += gates[j]
		}
		ids[round], ws[round] = top, gates[top]/sum
		masked[top] = math.Inf(-1)
	}
	return ids, ws
}

// phiFixtureConfig is the tiny PhiMoE the fixtures use: LongRoPE with
// original_max_position_embeddings 40, so that the 33-token greedy prompt
// crosses it while decoding and the 300-token prompt is long throughout.
func phiFixtureConfig(rng *rand.Rand) (*phiRefConfig, map[string]any) {
	c := &phiRefConfig{vocab: 512, hidden: 128, layers: 2, heads: 4, kvHeads: 2, inter: 64, experts: 16,
		eps: 1e-5, theta: 10000, jitter: 0.2, orig: 40, shortM: 1.1, longM: 1.25}
	for i := 0; i < c.headDim()/2; i++ {
		c.short = append(c.short, 1+0.05*float64(i)*rng.Float64())
		c.long = append(c.long, 1+float64(i)*(0.5+rng.Float64()))
	}
	rs := map[string]any{"type": "longrope", "rope_type": "longrope", "short_factor": c.short, "long_factor": c.long,
		"short_mscale": c.shortM, "long_mscale": c.longM, "original_max_position_embeddings": c.orig}
	cfg := map[string]any{
		"architectures": []string{"PhimoeForCausalLM"}, "model_type": "phimoe",
		"vocab_size": c.vocab, "hidden_size": c.hidden, "intermediate_size": c.inter,
		"num_hidden_layers": c.layers, "num_attention_heads": c.heads, "num_key_value_heads": c.kvHeads,
		"hidden_act": "silu", "max_position_embeddings": 1024, "original_max_position_embeddings": c.orig,
		"rms_norm_eps": c.eps, "rope_theta": c.theta, "rope_scaling": rs, "sliding_window": 1024,
		"attention_bias": true, "lm_head_bias": true, "num_local_experts": c.experts, "num_experts_per_tok": 2,
		"router_jitter_noise": c.jitter, "input_jitter_noise": 0.01, "router_aux_loss_coef": 0.0,
		"attention_dropout": 0.0, "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
		"torch_dtype": "bfloat16",
	}
	return c, cfg
}

// phiRandomWeights draws weights under Hugging Face's names with their
// shapes, scaled so that activations stay of order one.
func phiRandomWeights(c *phiRefConfig, rng *rand.Rand) (map[string][]float32, map[string][]int) {
	ws, shapes := map[string][]float32{}, map[string][]int{}
	add := func(name string, std, mean float64, shape ...int) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + std*rng.NormFloat64())
		}
		ws[name], shapes[name] = v, shape
	}
	h, kvd := c.hidden, c.kvHeads*c.headDim()
	lin := func(name string, rows, cols int, bias bool) {
		add(name+".weight", 1/math.Sqrt(float64(cols)), 0, rows, cols)
		if bias {
			add(name+".bias", 0.1, 0, rows)
		}
	}
	norm := func(name string) {
		add(name+".weight", 0.1, 1, h)
		add(name+".bias", 0.1, 0, h)
	}
	add("model.embed_tokens.weight", 1, 0, c.vocab, h)
	for l := 0; l < c.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		norm(p + "input_layernorm")
		norm(p + "post_attention_layernorm")
		lin(p+"self_attn.q_proj", h, h, true)
		lin(p+"self_attn.k_proj", kvd, h, true)
		lin(p+"self_attn.v_proj", kvd, h, true)
		lin(p+"self_attn.o_proj", h, h, true)
		lin(p+"block_sparse_moe.gate", c.experts, h, false)
		for e := 0; e < c.experts; e++ {
			q := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
			lin(q+"w1", c.inter, h, false)
			lin(q+"w3", c.inter, h, false)
			lin(q+"w2", h, c.inter, false)
		}
	}
	norm("model.norm")
	lin("lm_head", c.vocab, h, true)
	return ws, shapes
}

// mlxExpertNames maps Hugging Face's per-expert names to the MLX stacks.
var mlxExpertNames = map[string]string{"w1": "gate_proj", "w3": "up_proj", "w2": "down_proj"}

// phiLayout turns the drawn weights into one checkpoint layout: the
// safetensors tensors and the values the reference must use (what the
// engine reads back: bf16-rounded, or 4-bit dequantized).
func phiLayout(c *phiRefConfig, raw map[string][]float32, shapes map[string][]int, mlx bool) (map[string]fixture.Tensor, phiRefWeights, error) {
	tensors, ref := map[string]fixture.Tensor{}, phiRefWeights{}
	bf16 := func(name string, v []float32, shape []int) {
		b := make([]byte, 2*len(v))
		r := make([]float64, len(v))
		for i, x := range v {
			u := kernels.F32ToBF16(x)
			binary.LittleEndian.PutUint16(b[2*i:], u)
			r[i] = float64(kernels.BF16ToF32(u))
		}
		tensors[name] = fixture.Tensor{DType: "BF16", Shape: shape, Data: b}
		ref[name] = r
	}
	u16 := func(v []uint16) []byte {
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], x)
		}
		return b
	}
	// quant stores the [lead*rows, cols] matrix v 4-bit, group 64, under
	// module (shape lead x rows x ... when lead > 0) and returns its
	// dequantized values.
	quant := func(module string, v []float32, lead, rows, cols int) ([]float64, error) {
		total := rows * max(lead, 1)
		m, err := kernels.Quantize(v, total, cols, 4, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", module, err)
		}
		shape := func(last int) []int {
			if lead > 0 {
				return []int{lead, rows, last}
			}
			return []int{rows, last}
		}
		w := make([]byte, 4*len(m.Q.W))
		for i, x := range m.Q.W {
			binary.LittleEndian.PutUint32(w[4*i:], x)
		}
		tensors[module+".weight"] = fixture.Tensor{DType: "U32", Shape: shape(cols / 8), Data: w}
		tensors[module+".scales"] = fixture.Tensor{DType: "BF16", Shape: shape(cols / 64), Data: u16(m.Q.Scales)}
		tensors[module+".biases"] = fixture.Tensor{DType: "BF16", Shape: shape(cols / 64), Data: u16(m.Q.Biases)}
		out := make([]float64, total*cols)
		row := make([]float32, cols)
		for r := 0; r < total; r++ {
			m.Row(r, row)
			for i, x := range row {
				out[r*cols+i] = float64(x)
			}
		}
		return out, nil
	}
	for name, v := range raw {
		shape := shapes[name]
		if !mlx || len(shape) != 2 {
			bf16(name, v, shape)
			continue
		}
		var l, e int
		var w string
		if _, err := fmt.Sscanf(name, "model.layers.%d.block_sparse_moe.experts.%d.%2s.weight", &l, &e, &w); err == nil {
			continue // stacked below
		}
		module := name[:len(name)-len(".weight")]
		r, err := quant(module, v, 0, shape[0], shape[1])
		if err != nil {
			return nil, nil, err
		}
		ref[name] = r
	}
	if mlx {
		for l := 0; l < c.layers; l++ {
			for hf, mx := range mlxExpertNames {
				var stack []float32
				rows, cols := c.inter, c.hidden
				if hf == "w2" {
					rows, cols = c.hidden, c.inter
				}
				p := fmt.Sprintf("model.layers.%d.block_sparse_moe.", l)
				for e := 0; e < c.experts; e++ {
					stack = append(stack, raw[fmt.Sprintf("%sexperts.%d.%s.weight", p, e, hf)]...)
				}
				r, err := quant(p+"switch_mlp."+mx, stack, c.experts, rows, cols)
				if err != nil {
					return nil, nil, err
				}
				for e := 0; e < c.experts; e++ {
					ref[fmt.Sprintf("%sexperts.%d.%s.weight", p, e, hf)] = r[e*rows*cols : (e+1)*rows*cols]
				}
			}
		}
	}
	return tensors, ref, nil
}

// TestRegenPhiMoE writes testdata/fixtures/phimoe-4bit (MLX layout) and
// phimoe-hf-bf16 with references from the float64 transcription.
func TestRegenPhiMoE(t *testing.T) {
	if os.Getenv("MLXMOE_REGEN") != "1" {
		t.Skip("set MLXMOE_REGEN=1 to rewrite the phimoe fixtures")
	}
	src := fixture.Dir(t, "fixtures/mixtral-4bit") // same tokenizer and prompts
	prompts := fixture.LoadReference(t, src).Prompts
	for _, layout := range []string{"4bit", "hf-bf16"} {
		mlx := layout == "4bit"
		// Seeds are tried in turn until no routing decision of the
		// reference lies within minMargin of flipping, so float32 rounding in the
		// engine cannot pick other experts.
		for seed := uint64(1); ; seed++ {
			if seed > 50 {
				t.Fatalf("%s: no seed keeps every routing decision clear of flipping", layout)
			}
			ok, err := writePhiFixture(t, src, prompts, layout, mlx, seed)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
		}
	}
}

// minMargin is how far every routing decision of the reference must be
// from flipping (float32 rounding moves router logits by ~1e-6).
const minMargin = 2e-5

func writePhiFixture(t *testing.T, src string, prompts []fixture.Prompt, layout string, mlx bool, seed uint64) (bool, error) {
	rng := rand.New(rand.NewPCG(seed, 21))
	c, cfg := phiFixtureConfig(rng)
	raw, shapes := phiRandomWeights(c, rng)
	tensors, w, err := phiLayout(c, raw, shapes, mlx)
	if err != nil {
		return false, err
	}
	if mlx {
		q := map[string]any{"group_size": 64, "bits": 4, "mode": "affine"}
		cfg["quantization"], cfg["quantization_config"] = q, q
	}
	// Each pass (the greedy steps' too) must leave every routing decision
	// clear of flipping, or the next seed is tried.
	pass := func(ids []int32, what string) (*phiRefOut, error) {
		r := phiRefForward(c, w, ids)
		if r.margin < minMargin {
			return r, fmt.Errorf("%s seed %d: %s: %s is %.2g from flipping; next seed", layout, seed, what, r.marginAt, r.margin)
		}
		return r, nil
	}
	outs, err := refPrompts(prompts, func(ids []int32) (*refTrace, error) {
		r, err := pass(ids, fmt.Sprintf("a %d-token prompt", len(ids)))
		routes := map[string][][]int32{}
		for l := 0; l < c.layers; l++ {
			key := fmt.Sprintf("model.layers.%d.block_sparse_moe.gate", l)
			for _, pair := range r.routes[l] {
				routes[key] = append(routes[key], []int32{int32(pair[0]), int32(pair[1])})
			}
		}
		return &refTrace{logits: r.logits, embedLast: r.embedLast, layerLast: r.layerLast, routes: routes}, err
	})
	// Greedy: each step a full forward of the sequence so far, as
	// transformers' generate does (it recomputes the cache when the
	// sequence crosses original_max_position_embeddings).
	greedyPrompt := prompts[1].IDs
	var greedy map[string]any
	if err == nil {
		greedy, err = refGreedy(greedyPrompt, func(ids []int32) ([]float64, error) {
			r, err := pass(ids, fmt.Sprintf("greedy at %d tokens", len(ids)))
			return r.logits[len(ids)-1], err
		})
	}
	if err != nil {
		t.Log(err)
		return false, nil
	}
	if n := len(greedyPrompt) + 24; n <= c.orig || len(greedyPrompt) > c.orig {
		return false, fmt.Errorf("greedy run of %d tokens from %d does not cross original_max_position_embeddings %d", n, len(greedyPrompt), c.orig)
	}
	ref := map[string]any{
		"source":    "float64 Go transcription of transformers src/transformers/models/phimoe/modeling_phimoe.py (not transformers itself): model/ref_phimoe_test.go",
		"dtype":     "float64",
		"fixture":   "phimoe-" + layout,
		"family":    "phimoe",
		"layout":    map[bool]string{true: "mlx", false: "hf"}[mlx],
		"seed":      seed,
		"generator": "go test ./model -run TestRegenPhiMoE (MLXMOE_REGEN=1)",
		"prompts":   outs,
		"greedy":    greedy,
	}
	if mlx {
		ref["bits"], ref["group_size"] = 4, 64
	}
	dir := filepath.Join(fixture.Root(), "fixtures", "phimoe-"+layout)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	tmp := t.TempDir()
	if err := fixture.WriteSafetensors(filepath.Join(tmp, "model.safetensors"), tensors); err != nil {
		return false, err
	}
	st, err := os.ReadFile(filepath.Join(tmp, "model.safetensors"))
	if err != nil {
		return false, err
	}
	cfgJSON, _ := json.MarshalIndent(cfg, "", "  ")
	refJSON, _ := json.Marshal(ref)
	tok, err := os.ReadFile(filepath.Join(src, "tokenizer.json"))
	if err != nil {
		return false, err
	}
	tokCfg, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		return false, err
	}
	for name, data := range map[string][]byte{"model.safetensors.gz": st, "reference.json.gz": refJSON, "tokenizer.json.gz": tok} {
		if err := writeGzip(filepath.Join(dir, name), data); err != nil {
			return false, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(cfgJSON, '\n'), 0o644); err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tokCfg, 0o644); err != nil {
		return false, err
	}
	t.Logf("%s: seed %d, greedy %v", layout, seed, greedy["new_ids"])
	return true, nil
}

func writeGzip(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	z, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	if _, err := z.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := z.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
