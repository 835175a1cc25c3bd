package model_test

// The float64 reference kit shared by the Hunyuan and MiniMax-M2
// transcriptions (hunyuan_ref_test.go, minimax_m2_ref_test.go): a tiny
// checkpoint writer that records the exact (dequantized) values it stores,
// plain-loop float64 math, and the writer of a fixture's reference.json.
// None of it runs through graph, cpu or the kernels; kernels only quantizes
// and dequantizes the stored weights, as MLX does.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// skipUnlessRegen skips a fixture generator unless MLXMOE_REGEN=1.
func skipUnlessRegen(t *testing.T) {
	if os.Getenv("MLXMOE_REGEN") != "1" {
		t.Skip("set MLXMOE_REGEN=1 to rewrite the fixture")
	}
}

// f64Ckpt builds a checkpoint: tensors to store, and the float64 value of
// every weight as stored (bf16-rounded or quantized then dequantized).
type f64Ckpt struct {
	rng     *rand.Rand
	bits    int // 0: bf16 (Hugging Face layout), else MLX affine bits, group 64
	tensors map[string]fixture.Tensor
	quant   map[string]any // config.json "quantization" (MLX layout)
}

const f64Group = 64

func newF64Ckpt(seed int64, bits int) *f64Ckpt {
	g := &f64Ckpt{rng: rand.New(rand.NewSource(seed)), bits: bits, tensors: map[string]fixture.Tensor{}}
	if bits != 0 {
		g.quant = map[string]any{"group_size": f64Group, "bits": bits, "mode": "affine"}
	}
	return g
}

func (g *f64Ckpt) randn(n int, std float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(g.rng.NormFloat64() * std)
	}
	return v
}

// bf16 stores v as a BF16 tensor and returns the stored values.
func (g *f64Ckpt) bf16(name string, shape []int, v []float32) []float64 {
	return storeBF16(g.tensors, name, shape, v)
}

// storeBF16 puts v into tensors as a BF16 tensor called name and returns
// the values it holds after rounding (the reference transcriptions'
// weights).
func storeBF16(tensors map[string]fixture.Tensor, name string, shape []int, v []float32) []float64 {
	data := make([]byte, 2*len(v))
	out := make([]float64, len(v))
	for i, x := range v {
		b := kernels.F32ToBF16(x)
		binary.LittleEndian.PutUint16(data[2*i:], b)
		out[i] = float64(kernels.BF16ToF32(b))
	}
	tensors[name] = fixture.Tensor{DType: "BF16", Shape: shape, Data: data}
	return out
}

// f32 stores v as an F32 tensor.
func (g *f64Ckpt) f32(name string, shape []int, v []float32) []float64 {
	g.tensors[name] = fixture.F32(shape, v)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// norm stores an RMSNorm weight near one.
func (g *f64Ckpt) norm(name string, n int) []float64 {
	v := g.randn(n, 0.1)
	for i := range v {
		v[i]++
	}
	return g.bf16(name, []int{n}, v)
}

// linears stores count matrices [rows, cols] of module (count 0: one
// unstacked matrix) at the given bits (0: bf16) and returns their stored
// values, row-major. Stacked matrices are MLX's [count, rows, cols] tensors.
func (g *f64Ckpt) linears(module string, count, rows, cols, bits int, std float64) [][]float64 {
	n := max(count, 1)
	var lead []int
	if count > 0 {
		lead = []int{count}
	}
	shape := func(tail ...int) []int { return append(slices.Clone(lead), tail...) }
	out := make([][]float64, n)
	if bits == 0 {
		var all []float32
		for range n {
			all = append(all, g.randn(rows*cols, std)...)
		}
		flat := g.bf16(module+".weight", shape(rows, cols), all)
		for e := range out {
			out[e] = flat[e*rows*cols : (e+1)*rows*cols]
		}
		return out
	}
	var w, s, b []byte
	for e := range out {
		m, err := kernels.Quantize(g.randn(rows*cols, std), rows, cols, bits, f64Group)
		if err != nil {
			panic(err)
		}
		for _, x := range m.Q.W {
			w = binary.LittleEndian.AppendUint32(w, x)
		}
		for i := range m.Q.Scales {
			s = binary.LittleEndian.AppendUint16(s, m.Q.Scales[i])
			b = binary.LittleEndian.AppendUint16(b, m.Q.Biases[i])
		}
		out[e] = make([]float64, rows*cols)
		row := make([]float32, cols)
		for r := range rows {
			m.Row(r, row)
			for c, x := range row {
				out[e][r*cols+c] = float64(x)
			}
		}
	}
	g.tensors[module+".weight"] = fixture.Tensor{DType: "U32", Shape: shape(rows, cols*bits/32), Data: w}
	g.tensors[module+".scales"] = fixture.Tensor{DType: "BF16", Shape: shape(rows, cols/f64Group), Data: s}
	g.tensors[module+".biases"] = fixture.Tensor{DType: "BF16", Shape: shape(rows, cols/f64Group), Data: b}
	if bits != g.bits {
		g.quant[module] = map[string]any{"group_size": f64Group, "bits": bits}
	}
	return out
}

// linear stores one matrix at the checkpoint's bits.
func (g *f64Ckpt) linear(module string, rows, cols int, std float64) []float64 {
	return g.linears(module, 0, rows, cols, g.bits, std)[0]
}

// experts stores n SwiGLU experts of size inter under prefix p: MLX stacks
// them (switch_mlp.gate_proj, ...), Hugging Face keeps one module per
// expert (experts.<e>.<name>, names gate, up, down).
func (g *f64Ckpt) experts(p string, n, hidden, inter int, names [3]string) []f64MLP {
	out := make([]f64MLP, n)
	if g.bits != 0 {
		std := 1 / math.Sqrt(float64(hidden))
		gate := g.linears(p+"switch_mlp.gate_proj", n, inter, hidden, g.bits, std)
		up := g.linears(p+"switch_mlp.up_proj", n, inter, hidden, g.bits, std)
		down := g.linears(p+"switch_mlp.down_proj", n, hidden, inter, g.bits, 1/math.Sqrt(float64(inter)))
		for e := range out {
			out[e] = f64MLP{gate[e], up[e], down[e], hidden, inter}
		}
		return out
	}
	for e := range out {
		out[e] = g.mlp(fmt.Sprintf("%sexperts.%d.", p, e), hidden, inter, names)
	}
	return out
}

// mlp stores a dense SwiGLU block under prefix p.
func (g *f64Ckpt) mlp(p string, hidden, inter int, names [3]string) f64MLP {
	std := 1 / math.Sqrt(float64(hidden))
	return f64MLP{
		gate:   g.linear(p+names[0], inter, hidden, std),
		up:     g.linear(p+names[1], inter, hidden, std),
		down:   g.linear(p+names[2], hidden, inter, 1/math.Sqrt(float64(inter))),
		hidden: hidden, inter: inter,
	}
}

var f64SwiGLUNames = [3]string{"gate_proj", "up_proj", "down_proj"}

// f64MLP is a SwiGLU block: down(silu(gate x) * up x).
type f64MLP struct {
	gate, up, down []float64
	hidden, inter  int
}

func (m f64MLP) apply(x []float64) []float64 {
	g, u := matvec(m.gate, m.inter, x, nil), matvec(m.up, m.inter, x, nil)
	for i := range g {
		g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
	}
	return matvec(m.down, m.hidden, g, nil)
}

// f64Attn is a GQA attention block's projections.
type f64Attn struct {
	q, k, v, o                      []float64
	hidden, heads, kvHeads, headDim int
}

// attention stores the q/k/v/o projections of the attention block at
// prefix p (bits as the checkpoint's).
func (g *f64Ckpt) attention(p string, hidden, heads, kvHeads, headDim int) f64Attn {
	qd, kd := heads*headDim, kvHeads*headDim
	std := 1 / math.Sqrt(float64(hidden))
	return f64Attn{
		q: g.linear(p+"q_proj", qd, hidden, std), k: g.linear(p+"k_proj", kd, hidden, std),
		v: g.linear(p+"v_proj", kd, hidden, std), o: g.linear(p+"o_proj", hidden, qd, 1/math.Sqrt(float64(qd))),
		hidden: hidden, heads: heads, kvHeads: kvHeads, headDim: headDim,
	}
}

// apply projects the rows h, lets prep normalise and rotate each
// position's q and k in place (the order is the family's), and returns
// o_proj of causal attention.
func (a f64Attn) apply(h [][]float64, prep func(pos int, q, k []float64)) [][]float64 {
	q, k, v := make([][]float64, len(h)), make([][]float64, len(h)), make([][]float64, len(h))
	for t, x := range h {
		q[t] = matvec(a.q, a.heads*a.headDim, x, nil)
		k[t] = matvec(a.k, a.kvHeads*a.headDim, x, nil)
		v[t] = matvec(a.v, a.kvHeads*a.headDim, x, nil)
		prep(t, q[t], k[t])
	}
	out := f64Attention(q, k, v, a.heads, a.kvHeads, a.headDim)
	for t := range out {
		out[t] = matvec(a.o, a.hidden, out[t], nil)
	}
	return out
}

// f64MixExperts adds to out the chosen experts' outputs for x, each
// weighted by its score over the chosen scores' sum.
func f64MixExperts(out, x []float64, experts []f64MLP, top []int, scores []float64) {
	var sum float64
	for _, e := range top {
		sum += scores[e]
	}
	for _, e := range top {
		y := experts[e].apply(x)
		for i := range y {
			out[i] += scores[e] / sum * y[i]
		}
	}
}

// f64RMSNorm normalises each len(w) piece of x in place, times w.
func f64RMSNorm(x, w []float64, eps float64) {
	d := len(w)
	for p := 0; p < len(x); p += d {
		var ss float64
		for _, v := range x[p : p+d] {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(d)+eps)
		for i := range d {
			x[p+i] *= inv * w[i]
		}
	}
}

func f64Normed(x, w []float64, eps float64) []float64 {
	y := slices.Clone(x)
	f64RMSNorm(y, w, eps)
	return y
}

// f64RopeInvFreq is 1/base^(2i/dim) for i < dim/2.
func f64RopeInvFreq(base float64, dim int) []float64 {
	inv := make([]float64, dim/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(base, float64(2*i)/float64(dim))
	}
	return inv
}

// f64RopeHalf rotates the first 2*len(inv) values of each head of x (heads of
// headDim) by position pos, in transformers' rotate_half layout: value i
// pairs with value i+len(inv).
func f64RopeHalf(x []float64, headDim int, pos int, inv []float64) {
	half := len(inv)
	for h := 0; h+headDim <= len(x); h += headDim {
		for i, f := range inv {
			s, c := math.Sincos(float64(pos) * f)
			a, b := x[h+i], x[h+i+half]
			x[h+i], x[h+i+half] = a*c-b*s, b*c+a*s
		}
	}
}

// f64Attention is softmax(q k^T / sqrt(d)) v per head over positions
// 0..t for each query t, query head h reading KV head h/(heads/kvHeads).
func f64Attention(q, k, v [][]float64, heads, kvHeads, d int) [][]float64 {
	out := make([][]float64, len(q))
	scale := 1 / math.Sqrt(float64(d))
	for t := range q {
		out[t] = make([]float64, heads*d)
		for h := range heads {
			kh := h / (heads / kvHeads)
			scores := make([]float64, t+1)
			for s := range scores {
				var dot float64
				for i := range d {
					dot += q[t][h*d+i] * k[s][kh*d+i]
				}
				scores[s] = dot * scale
			}
			f64Softmax(scores)
			for s, p := range scores {
				for i := range d {
					out[t][h*d+i] += p * v[s][kh*d+i]
				}
			}
		}
	}
	return out
}

func f64Softmax(x []float64) {
	m := slices.Max(x)
	var sum float64
	for i, v := range x {
		x[i] = math.Exp(v - m)
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}

// f64TopK returns the indices of the k largest values, largest first, the
// lower index first among equals (torch.topk on CPU).
func f64TopK(x []float64, k int) []int {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] > x[idx[b]] })
	return idx[:k]
}

// f64RouteGap is how far the k-th choice is above the (k+1)-th: a tiny gap
// could flip under float32 rounding, so the generators avoid seeds with one.
// Callers pass router logits, or scores scaled to logit units.
func f64RouteGap(choice []float64, k int) float64 {
	s := slices.Clone(choice)
	sort.Sort(sort.Reverse(sort.Float64Slice(s)))
	return s[k-1] - s[k]
}

// f64Decoder is the pre-norm decoder stack every family here shares:
// x += attn(norm1(x)); x += moe(norm2(x)); logits = head(norm(x)).
type f64Decoder struct {
	hidden, vocab int
	eps           float64
	embed, head   []float64 // [vocab, hidden]
	norm          []float64
	inNorm, post  [][]float64
	// attn maps layer l's normalised rows to its attention output.
	attn func(l int, h [][]float64) [][]float64
	// moe maps layer l's normalised rows to its MoE output, with each
	// token's chosen experts and the smallest top-k margin seen.
	moe func(l int, h [][]float64) ([][]float64, [][]int, float64)
}

// addLayer stores layer l's input and post-attention RMSNorms, appends
// them to the stack and returns the layer's tensor prefix.
func (m *f64Decoder) addLayer(g *f64Ckpt, l int) string {
	p := fmt.Sprintf("model.layers.%d.", l)
	m.inNorm = append(m.inNorm, g.norm(p+"input_layernorm.weight", m.hidden))
	m.post = append(m.post, g.norm(p+"post_attention_layernorm.weight", m.hidden))
	return p
}

// f64Pass is what one forward pass over a prompt records.
type f64Pass struct {
	logits    [][]float64 // per position
	layerLast [][]float64 // per layer, at the last position
	routes    [][][]int   // per layer, per token
	minGap    float64     // smallest routing margin
}

func (m *f64Decoder) forward(ids []int32) f64Pass {
	n := len(ids)
	x := make([][]float64, n)
	for t, id := range ids {
		x[t] = slices.Clone(m.embed[int(id)*m.hidden : (int(id)+1)*m.hidden])
	}
	pass := f64Pass{minGap: math.Inf(1)}
	for l := range m.inNorm {
		h := make([][]float64, n)
		for t := range x {
			h[t] = f64Normed(x[t], m.inNorm[l], m.eps)
		}
		for t, a := range m.attn(l, h) {
			f64AddTo(x[t], a)
		}
		for t := range x {
			h[t] = f64Normed(x[t], m.post[l], m.eps)
		}
		y, routes, gap := m.moe(l, h)
		for t := range x {
			f64AddTo(x[t], y[t])
		}
		pass.routes = append(pass.routes, routes)
		pass.minGap = min(pass.minGap, gap)
		pass.layerLast = append(pass.layerLast, slices.Clone(x[n-1]))
	}
	for t := range x {
		pass.logits = append(pass.logits, matvec(m.head, m.vocab, f64Normed(x[t], m.norm, m.eps), nil))
	}
	return pass
}

func f64AddTo(x, y []float64) {
	for i := range x {
		x[i] += y[i]
	}
}

// f64Fixture is everything writeF64Fixture needs for one fixture.
type f64Fixture struct {
	name, family, source string // source: the transformers file transcribed
	seed                 int64
	bits                 int
	config               map[string]any
	ckpt                 *f64Ckpt
	model                *f64Decoder
}

// writeF64Fixture writes testdata/fixtures/<name>: config.json, the
// gzipped checkpoint, the tokenizer of qwen3_moe-4bit (vocab 512) and a
// reference.json.gz with that fixture's prompts and the float64 outputs.
// build makes the fixture from a seed; seeds from seed0 on are tried until
// every routing margin is at least 1e-4, so that float32 rounding in the
// engine cannot flip an expert choice.
func writeF64Fixture(t *testing.T, seed0 int64, build func(seed int64) f64Fixture) {
	src := fixture.LoadReference(t, fixture.Dir(t, "fixtures/qwen3_moe-4bit"))
	for seed := seed0; seed < seed0+20; seed++ {
		if build(seed).writeIfClear(t, src) {
			return
		}
	}
	t.Fatalf("no seed from %d gives routing margins of at least 1e-4", seed0)
}

// regenF64Fixtures rewrites a family's MLX 4-bit fixture <family>-4bit and
// Hugging Face bf16 fixture <family>-hf-bf16, from seeds seed4 and
// seedBF16 on.
func regenF64Fixtures(t *testing.T, family, source string, config func() map[string]any,
	build func(seed int64, bits int) (*f64Ckpt, *f64Decoder), seed4, seedBF16 int64) {
	skipUnlessRegen(t)
	for _, fx := range []struct {
		name string
		bits int
		seed int64
	}{{family + "-4bit", 4, seed4}, {family + "-hf-bf16", 0, seedBF16}} {
		writeF64Fixture(t, fx.seed, func(seed int64) f64Fixture {
			g, m := build(seed, fx.bits)
			return f64Fixture{name: fx.name, family: family, source: source, seed: seed, bits: fx.bits,
				config: config(), ckpt: g, model: m}
		})
	}
}

func (f f64Fixture) writeIfClear(t *testing.T, src *fixture.Reference) bool {
	srcDir := filepath.Join(fixture.Root(), "fixtures", "qwen3_moe-4bit")
	ref := map[string]any{
		"source": f.source, "dtype": "float64", "fixture": f.name, "family": f.family,
		"seed": f.seed, "generator": "mlx-moe model/" + f.family + "_ref_test.go (MLXMOE_REGEN=1)",
	}
	if f.bits != 0 {
		ref["layout"], ref["bits"], ref["group_size"] = "mlx", f.bits, f64Group
	} else {
		ref["layout"] = "hf"
	}
	minGap := math.Inf(1)
	prompts, _ := refPrompts(src.Prompts, func(ids []int32) (*refTrace, error) {
		pass := f.model.forward(ids)
		minGap = min(minGap, pass.minGap)
		id := int(ids[len(ids)-1])
		tr := &refTrace{logits: pass.logits, embedLast: f.model.embed[id*f.model.hidden : (id+1)*f.model.hidden],
			layerLast: pass.layerLast, routes: map[string][][]int32{}}
		for l, perPos := range pass.routes {
			key := fmt.Sprintf("model.layers.%d.mlp.gate", l) // transformers' router name
			for _, r := range perPos {
				ids := make([]int32, len(r))
				for i, e := range r {
					ids[i] = int32(e)
				}
				tr.routes[key] = append(tr.routes[key], ids)
			}
		}
		return tr, nil
	})
	if minGap < 1e-4 {
		t.Logf("%s: seed %d gives a routing margin of %g; trying the next", f.name, f.seed, minGap)
		return false
	}
	greedy, _ := refGreedy(src.Greedy.PromptIDs, func(ids []int32) ([]float64, error) {
		pass := f.model.forward(ids)
		return pass.logits[len(pass.logits)-1], nil
	})
	ref["prompts"], ref["greedy"] = prompts, greedy

	dir := filepath.Join(fixture.Root(), "fixtures", f.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if f.ckpt.quant != nil {
		f.config["quantization"] = f.ckpt.quant
		f.config["quantization_config"] = f.ckpt.quant
	}
	cfg, _ := json.MarshalIndent(f.config, "", "  ")
	writeFileT(t, filepath.Join(dir, "config.json"), append(cfg, '\n'))
	st := filepath.Join(t.TempDir(), "model.safetensors")
	if err := fixture.WriteSafetensors(st, f.ckpt.tensors); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(st)
	if err != nil {
		t.Fatal(err)
	}
	writeFileT(t, filepath.Join(dir, "model.safetensors.gz"), gzipBytes(t, data))
	refJSON, _ := json.Marshal(ref)
	writeFileT(t, filepath.Join(dir, "reference.json.gz"), gzipBytes(t, refJSON))
	for _, name := range []string{"tokenizer.json.gz", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(srcDir, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFileT(t, filepath.Join(dir, name), b)
	}
	t.Logf("%s: seed %d, wrote %d prompts, smallest routing margin %.3g, greedy %v", f.name, f.seed, len(prompts), minGap, greedy["new_ids"])
	return true
}

func gzipBytes(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFileT(t *testing.T, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
