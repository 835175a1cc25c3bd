// Package synth writes synthetic checkpoints: random weights with the exact
// tensor names, shapes, dtypes and MLX affine quantization of a large MoE
// model (Qwen3-Coder-Next, Qwen3.5), routers skewed to a trained model's
// expert popularity, so that the pager and the engine can be measured at
// full scale without downloading it (`mlx-moe synth`, scripts/scale,
// scripts/soak). See Options.
package synth

import (
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/internal/safetensors"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Options says what synthetic checkpoint Write writes.
//
// The checkpoint has the exact tensor names, shapes, dtypes and MLX affine
// quantization (4-bit, group GroupSize; routers and shared-expert gates
// 8-bit) of
// the model it imitates, with random weights, so that the pager and the
// engine can be measured at full scale without downloading it.
//
// Routers are skewed so that expert popularity per layer follows the
// measured popularity of a trained model (the held-out expert counts of
// qwen3_next-code-tiny-4bit, embedded in synthdata/): every embedding row is
// a fixed direction c (random signs, one per hidden unit) plus token noise
// of the same size, and the output projections are scaled down 100x so the
// residual stream stays close to the embedding. After RMSNorm the router
// input then has a near-constant component along c and a token-dependent
// rest. Router row e is o_e/K * c/|c| plus random noise orthogonal to c,
// scaled so that each logit is o_e plus a token-dependent N(0,1) term. The
// offsets o_e are calibrated by Monte Carlo so that P(e in top-k) matches
// the target, which is the trained layer's popularity curve (Lorenz curve
// interpolated from 64 to E experts, layer l using trained layer l*6/L),
// assigned to expert ids by a random permutation per layer. The lm_head rows
// of ids the tokenizer does not know (LiveTokens and beyond) point against c,
// so generation stays within the tokenizer's vocabulary.
type Options struct {
	// Like names the model: see Models.
	Like string
	// Out is the directory to write (created if needed).
	Out string
	// Scale shrinks the number of layers and experts (1 = full size); the
	// shape of each expert and layer stays exact.
	Scale float64
	// Vocab overrides the vocabulary size (0 = the model's); for tests.
	Vocab int
	// TokenizerDir, if set, is where tokenizer.json and
	// tokenizer_config.json are copied from.
	TokenizerDir string
	// LiveTokens is the number of token ids generation may produce; 0 means
	// the size of the copied tokenizer's vocabulary, or all.
	LiveTokens int
	// ShardBytes is the size at which a new shard starts (0 = 5 GB).
	ShardBytes int64
	// GroupSize is the quantization group size: 32, 64 or 128 (0 = 64).
	GroupSize int
	Seed      uint64
	// Progress, if set, receives progress lines.
	Progress io.Writer
}

// Result describes a written checkpoint.
type Result struct {
	Dir             string
	Shards          []string
	Bytes           int64 // tensor bytes over all shards
	Layers, Experts int
	LiveTokens      int
	Elapsed         time.Duration
}

type synthArch struct {
	qwen35                                  bool
	layers, hidden, experts, topK           int
	moeInter, sharedInter, intermediate     int
	heads, kvHeads, headDim                 int
	linKeyHeads, linValueHeads, linKD, linV int
	convK, vocab, fullEvery, maxPos         int
	ropeTheta                               float64
	bos                                     int
	eos                                     []int
}

// synthArchs are reconstructed from the models' public config.json files.
var synthArchs = map[string]synthArch{
	// Qwen/Qwen3-Coder-Next (and mlx-community/Qwen3-Coder-Next-4bit):
	// 80B total, 3B active.
	"qwen3-coder-next": {layers: 48, hidden: 2048, experts: 512, topK: 10, moeInter: 512, sharedInter: 512, intermediate: 5120,
		heads: 16, kvHeads: 2, headDim: 256, linKeyHeads: 16, linValueHeads: 32, linKD: 128, linV: 128,
		convK: 4, vocab: 151936, fullEvery: 4, maxPos: 262144, ropeTheta: 5e6, bos: 151643, eos: []int{151645, 151643}},
	// Qwen/Qwen3.5-397B-A17B, text model only (the vision tower is not written).
	"qwen3.5-397b-a17b": {qwen35: true, layers: 60, hidden: 4096, experts: 512, topK: 10, moeInter: 1024, sharedInter: 1024, intermediate: 1024,
		heads: 32, kvHeads: 2, headDim: 256, linKeyHeads: 16, linValueHeads: 64, linKD: 128, linV: 128,
		convK: 4, vocab: 248320, fullEvery: 4, maxPos: 262144, ropeTheta: 1e7, bos: 248045, eos: []int{248046}},
}

// Models lists the models Write can imitate.
func Models() []string {
	names := make([]string, 0, len(synthArchs))
	for n := range synthArchs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

//go:embed synthdata/expert_counts.json
var trainedCountsJSON []byte

// trainedCounts returns the per-layer expert counts the router skew imitates.
func trainedCounts() ([][]int64, error) {
	var c struct {
		Layers [][]int64 `json:"layers"`
	}
	if err := json.Unmarshal(trainedCountsJSON, &c); err != nil || len(c.Layers) == 0 {
		return nil, fmt.Errorf("synth: synthdata/expert_counts.json: %v", err)
	}
	return c.Layers, nil
}

// Constants of the synthetic weights (see Options).
const (
	synthOutScale  = 0.01 // output projections relative to the usual 1/sqrt(fan-in)
	synthDeadLogit = 20   // how far below the others the logits of unknown tokens sit
)

type synthGen struct {
	arch    synthArch
	opt     Options
	prefix  string
	signs   []float32 // c/|c|
	offsets [][]float64
	live    int
}

// Write writes a synthetic checkpoint; see Options.
func Write(opt Options) (*Result, error) {
	start := time.Now()
	arch, opt, err := synthShape(opt)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	live := opt.LiveTokens
	if opt.TokenizerDir != "" {
		n, err := copyTokenizer(opt.TokenizerDir, opt.Out)
		if err != nil {
			return nil, err
		}
		if live == 0 {
			live = n
		}
	}
	if live <= 0 || live > arch.vocab {
		live = arch.vocab
	}
	g := &synthGen{arch: arch, opt: opt, prefix: "model.", live: live}
	if arch.qwen35 {
		g.prefix = "language_model.model."
	}
	if err := g.calibrate(); err != nil {
		return nil, err
	}
	res, err := g.write()
	if err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// synthShape checks opt, fills its defaults and returns the architecture
// scaled as opt asks.
func synthShape(opt Options) (synthArch, Options, error) {
	arch, ok := synthArchs[strings.ToLower(opt.Like)]
	if !ok {
		return arch, opt, fmt.Errorf("synth: unknown model %q (want one of %s)", opt.Like, strings.Join(Models(), ", "))
	}
	if opt.Scale == 0 {
		opt.Scale = 1
	}
	if !(opt.Scale > 0 && opt.Scale <= 1) { // NaN too
		return arch, opt, fmt.Errorf("synth: scale %v (want 0 < scale <= 1)", opt.Scale)
	}
	if opt.Out == "" {
		return arch, opt, fmt.Errorf("synth: no output directory")
	}
	if opt.ShardBytes <= 0 {
		opt.ShardBytes = 5e9
	}
	if opt.GroupSize == 0 {
		opt.GroupSize = 64
	}
	if gs := opt.GroupSize; gs != 32 && gs != 64 && gs != 128 {
		return arch, opt, fmt.Errorf("synth: group size %d (want 32, 64 or 128)", gs)
	}
	arch.layers = max(arch.fullEvery, arch.fullEvery*int(math.Round(float64(arch.layers)*opt.Scale/float64(arch.fullEvery))))
	arch.experts = max(2*arch.topK, int(math.Round(float64(arch.experts)*opt.Scale)))
	if opt.Vocab > 0 {
		arch.vocab = opt.Vocab
	}
	return arch, opt, nil
}

// Bytes is the size of the tensors Write would write for opt,
// computed without writing anything (to check free space first).
func Bytes(opt Options) (int64, error) {
	arch, opt, err := synthShape(opt)
	if err != nil {
		return 0, err
	}
	g := &synthGen{arch: arch, opt: opt, prefix: "model."}
	var total int64
	for _, grp := range g.tensors() {
		for _, t := range grp {
			total += t.Bytes()
		}
	}
	return total, nil
}

// copyTokenizer copies the tokenizer files and returns the tokenizer's
// vocabulary size (highest id + 1).
func copyTokenizer(from, to string) (int, error) {
	vocab := 0
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return 0, fmt.Errorf("synth: tokenizer: %w", err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o644); err != nil {
			return 0, fmt.Errorf("synth: %w", err)
		}
		if name != "tokenizer.json" {
			continue
		}
		var tok struct {
			Model struct {
				Vocab map[string]int `json:"vocab"`
			} `json:"model"`
			Added []struct {
				ID int `json:"id"`
			} `json:"added_tokens"`
		}
		if err := json.Unmarshal(b, &tok); err != nil {
			return 0, fmt.Errorf("synth: %s: %w", filepath.Join(from, name), err)
		}
		for _, id := range tok.Model.Vocab {
			vocab = max(vocab, id+1)
		}
		for _, a := range tok.Added {
			vocab = max(vocab, a.ID+1)
		}
	}
	return vocab, nil
}

// calibrate computes the router offsets of every layer.
func (g *synthGen) calibrate() error {
	counts, err := trainedCounts()
	if err != nil {
		return err
	}
	a := g.arch
	g.signs = make([]float32, a.hidden)
	r := newSplitmix(g.seed("signs"))
	inv := float32(1 / math.Sqrt(float64(a.hidden)))
	for i := range g.signs {
		if r.next()&1 == 0 {
			g.signs[i] = inv
		} else {
			g.signs[i] = -inv
		}
	}
	byCurve := map[int][]float64{}
	g.offsets = make([][]float64, a.layers)
	for l := range a.layers {
		c := l * len(counts) / a.layers
		o, ok := byCurve[c]
		if !ok {
			p := inclusionTargets(popularityCurve(counts[c], a.experts), a.topK)
			o = routerOffsets(p, a.topK, g.seed(fmt.Sprint("calibrate", c)))
			byCurve[c] = o
		}
		perm := newSplitmix(g.seed(fmt.Sprint("perm", l))).perm(a.experts)
		g.offsets[l] = make([]float64, a.experts)
		for rank, e := range perm {
			g.offsets[l][e] = o[rank]
		}
	}
	return nil
}

// popularityCurve maps measured counts onto e experts: expert r (by rank)
// gets the share of the routes that the measured Lorenz curve gives the
// fraction [r/e, (r+1)/e) of most used experts.
func popularityCurve(counts []int64, e int) []float64 {
	c := slices.Clone(counts)
	slices.SortFunc(c, func(a, b int64) int { return int(b - a) })
	cum := make([]float64, len(c)+1)
	for i, v := range c {
		cum[i+1] = cum[i] + float64(v)
	}
	lorenz := func(x float64) float64 {
		pos := x * float64(len(c))
		i := min(int(pos), len(c)-1)
		return (cum[i] + (pos-float64(i))*(cum[i+1]-cum[i])) / cum[len(c)]
	}
	shares := make([]float64, e)
	for r := range shares {
		shares[r] = lorenz(float64(r+1)/float64(e)) - lorenz(float64(r)/float64(e))
	}
	return shares
}

// inclusionTargets turns route shares into the probability of each expert
// being among a token's k: k*share, capped below 1 with the excess spread
// over the others in proportion.
func inclusionTargets(shares []float64, k int) []float64 {
	const capP, floorP = 0.98, 1e-5
	lo, hi := 0.0, float64(k)*float64(len(shares))
	p := make([]float64, len(shares))
	for range 100 {
		lambda := (lo + hi) / 2
		sum := 0.0
		for i, s := range shares {
			p[i] = min(capP, max(floorP, lambda*s))
			sum += p[i]
		}
		if sum > float64(k) {
			hi = lambda
		} else {
			lo = lambda
		}
	}
	return p
}

// routerOffsets finds logit offsets o such that with logits o[e] + z[e], z
// independent standard normal, expert e is among the top k with probability
// p[e]. If the k-th largest of the other logits were a constant θ, p[e]
// would be Φ(o[e] - θ); so it starts from Φ⁻¹(p) and corrects in that
// (probit) scale against the observed frequencies on a fixed sample.
func routerOffsets(p []float64, k int, seed uint64) []float64 {
	const tokens, iterations = 8192, 40
	e := len(p)
	r := newSplitmix(seed)
	z := make([]float32, tokens*e)
	for i := range z {
		z[i] = float32(r.normal())
	}
	probit := func(q float64) float64 {
		q = min(max(q, 0.5/tokens), 1-0.5/tokens)
		return math.Sqrt2 * math.Erfinv(2*q-1)
	}
	o := make([]float64, e)
	for i := range o {
		o[i] = probit(p[i])
	}
	counts := make([]int, e)
	for range iterations {
		topkCounts(o, z, k, counts)
		for i := range o {
			o[i] += 0.7 * (probit(p[i]) - probit(float64(counts[i])/tokens))
		}
	}
	return o
}

// topkCounts counts how often each expert is among the k largest o+z over
// the rows of z.
func topkCounts(o []float64, z []float32, k int, counts []int) {
	e := len(o)
	clear(counts)
	top := make([]int, 0, k)
	val := make([]float64, 0, k)
	for t := 0; t+e <= len(z); t += e {
		top, val = top[:0], val[:0]
		for i := range e {
			v := o[i] + float64(z[t+i])
			if len(top) == k && v <= val[k-1] {
				continue
			}
			j := min(len(top), k-1)
			if len(top) < k {
				top, val = append(top, 0), append(val, 0)
			}
			for j > 0 && val[j-1] < v {
				top[j], val[j] = top[j-1], val[j-1]
				j--
			}
			top[j], val[j] = i, v
		}
		for _, i := range top {
			counts[i]++
		}
	}
}

func (g *synthGen) seed(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64() ^ g.opt.Seed*0x9e3779b97f4a7c15
}

// synthTensor is a tensor and the function that writes its data.
type synthTensor struct {
	safetensors.TensorInfo
	fill func(w io.Writer) error
}

// tensors lists every tensor of the checkpoint, layer by layer.
func (g *synthGen) tensors() [][]synthTensor {
	a := g.arch
	h := int64(a.hidden)
	p := g.prefix
	in := 1 / math.Sqrt(float64(a.hidden))
	var groups [][]synthTensor
	groups = append(groups, g.quantRows(p+"embed_tokens", int64(a.vocab), h, 4, g.embeddingRow))
	for l := range a.layers {
		lp := fmt.Sprintf("%slayers.%d.", p, l)
		var ts []synthTensor
		ts = append(ts, g.ones(lp+"input_layernorm.weight", h), g.ones(lp+"post_attention_layernorm.weight", h))
		if (l+1)%a.fullEvery != 0 {
			kd := int64(a.linKeyHeads * a.linKD)
			vd := int64(a.linValueHeads * a.linV)
			hv := int64(a.linValueHeads)
			la := lp + "linear_attn."
			ts = append(ts,
				g.vector(la+"A_log", "F32", []int64{hv}, func(r *splitmix) float64 { return math.Log(1 + 15*r.float()) }),
				g.vector(la+"conv1d.weight", "BF16", []int64{2*kd + vd, int64(a.convK), 1}, func(r *splitmix) float64 { return r.uniform(0.5) }),
				g.ones(la+"norm.weight", int64(a.linV)))
			dtBias := func(r *splitmix) float64 { // inverse softplus of dt in [1e-3, 1e-1]
				dt := math.Exp(math.Log(1e-3) + r.float()*math.Log(100))
				return math.Log(math.Expm1(dt))
			}
			if a.qwen35 {
				ts = append(ts, g.vector(la+"dt_bias", "BF16", []int64{hv}, dtBias))
				ts = append(ts, g.quantRandom(la+"in_proj_a", nil, hv, h, 4, in)...)
				ts = append(ts, g.quantRandom(la+"in_proj_b", nil, hv, h, 4, in)...)
				ts = append(ts, g.quantRandom(la+"in_proj_qkv", nil, 2*kd+vd, h, 4, in)...)
				ts = append(ts, g.quantRandom(la+"in_proj_z", nil, vd, h, 4, in)...)
			} else {
				ts = append(ts, g.vector(la+"dt_bias", "F32", []int64{hv}, dtBias))
				ts = append(ts, g.quantRandom(la+"in_proj_ba", nil, 2*hv, h, 4, in)...)
				ts = append(ts, g.quantRandom(la+"in_proj_qkvz", nil, 2*kd+2*vd, h, 4, in)...)
			}
			ts = append(ts, g.quantRandom(la+"out_proj", nil, h, vd, 4, synthOutScale/math.Sqrt(float64(vd)))...)
		} else {
			sa := lp + "self_attn."
			qd := int64(a.heads * a.headDim)
			kvd := int64(a.kvHeads * a.headDim)
			ts = append(ts, g.ones(sa+"q_norm.weight", int64(a.headDim)), g.ones(sa+"k_norm.weight", int64(a.headDim)))
			ts = append(ts, g.quantRandom(sa+"q_proj", nil, 2*qd, h, 4, in)...) // queries and their output gate
			ts = append(ts, g.quantRandom(sa+"k_proj", nil, kvd, h, 4, in)...)
			ts = append(ts, g.quantRandom(sa+"v_proj", nil, kvd, h, 4, in)...)
			ts = append(ts, g.quantRandom(sa+"o_proj", nil, h, qd, 4, synthOutScale/math.Sqrt(float64(qd)))...)
		}
		mlp := lp + "mlp."
		e := int64(a.experts)
		mi, si := int64(a.moeInter), int64(a.sharedInter)
		ts = append(ts, g.quantRows(mlp+"gate", e, h, 8, g.routerRow(l))...)
		ts = append(ts, g.quantRandom(mlp+"shared_expert_gate", nil, 1, h, 8, in)...)
		ts = append(ts, g.quantRandom(mlp+"shared_expert.gate_proj", nil, si, h, 4, in)...)
		ts = append(ts, g.quantRandom(mlp+"shared_expert.up_proj", nil, si, h, 4, in)...)
		ts = append(ts, g.quantRandom(mlp+"shared_expert.down_proj", nil, h, si, 4, synthOutScale/math.Sqrt(float64(si)))...)
		ts = append(ts, g.quantRandom(mlp+"switch_mlp.gate_proj", []int64{e}, mi, h, 4, in)...)
		ts = append(ts, g.quantRandom(mlp+"switch_mlp.up_proj", []int64{e}, mi, h, 4, in)...)
		ts = append(ts, g.quantRandom(mlp+"switch_mlp.down_proj", []int64{e}, h, mi, 4, synthOutScale/math.Sqrt(float64(mi)))...)
		groups = append(groups, ts)
	}
	head := "lm_head"
	if a.qwen35 {
		head = "language_model.lm_head"
	}
	last := []synthTensor{g.ones(p+"norm.weight", h)}
	last = append(last, g.quantRows(head, int64(a.vocab), h, 4, g.headRow)...)
	return append(groups, last)
}

// embeddingRow is c + token noise of the same size (unit per coordinate).
func (g *synthGen) embeddingRow(t int64, dst []float32) {
	r := newSplitmix(g.seed("embed") + uint64(t)*0x9e3779b97f4a7c15)
	scale := float32(math.Sqrt(float64(len(dst))))
	for i := range dst {
		dst[i] = g.signs[i]*scale + float32(r.uniform(math.Sqrt(3)))
	}
}

// routerRow is offset/K along c plus noise orthogonal to c, such that the
// logit of an embedding-like input is offset + N(0,1) (see Options).
func (g *synthGen) routerRow(l int) func(int64, []float32) {
	h := float64(g.arch.hidden)
	k := math.Sqrt(h / 2)
	sigma := math.Sqrt(2 / h)
	return func(e int64, dst []float32) {
		r := newSplitmix(g.seed(fmt.Sprint("router", l)) + uint64(e)*0x9e3779b97f4a7c15)
		g.orthogonalNoise(r, sigma, dst)
		along := float32(g.offsets[l][e] / k)
		for i := range dst {
			dst[i] += along * g.signs[i]
		}
	}
}

// headRow gives known tokens random logits and unknown ones a logit
// synthDeadLogit below, through a component against c.
func (g *synthGen) headRow(v int64, dst []float32) {
	h := float64(g.arch.hidden)
	r := newSplitmix(g.seed("lm_head") + uint64(v)*0x9e3779b97f4a7c15)
	g.orthogonalNoise(r, 1/math.Sqrt(h), dst)
	if v >= int64(g.live) {
		along := float32(-synthDeadLogit / math.Sqrt(h/2))
		for i := range dst {
			dst[i] += along * g.signs[i]
		}
	}
}

// orthogonalNoise fills dst with uniform noise of standard deviation sigma
// and removes its component along c.
func (g *synthGen) orthogonalNoise(r *splitmix, sigma float64, dst []float32) {
	var dot float64
	for i := range dst {
		dst[i] = float32(r.uniform(sigma * math.Sqrt(3)))
		dot += float64(dst[i]) * float64(g.signs[i])
	}
	for i := range dst {
		dst[i] -= float32(dot) * g.signs[i]
	}
}

func (g *synthGen) ones(name string, n int64) synthTensor {
	return g.vector(name, "BF16", []int64{n}, func(*splitmix) float64 { return 1 })
}

// vector is a small float tensor with values from val.
func (g *synthGen) vector(name, dtype string, shape []int64, val func(*splitmix) float64) synthTensor {
	t := safetensors.TensorInfo{Name: name, DType: dtype, Shape: shape}
	return synthTensor{t, func(w io.Writer) error {
		r := newSplitmix(g.seed(name))
		n := t.Bytes() / safetensors.ElementBytes(dtype)
		b := make([]byte, 0, t.Bytes())
		for range n {
			v := val(r)
			if dtype == "F32" {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
			} else {
				b = binary.LittleEndian.AppendUint16(b, kernels.F32ToBF16(float32(v)))
			}
		}
		_, err := w.Write(b)
		return err
	}}
}

// quantTensors returns the weight, scales and biases of an MLX affine
// quantized matrix [lead..., out, in].
func (g *synthGen) quantTensors(name string, lead []int64, out, in int64, bits int) (wt, sc, bi safetensors.TensorInfo) {
	shape := func(last int64) []int64 { return append(slices.Clone(lead), out, last) }
	groups := in / int64(g.opt.GroupSize)
	return safetensors.TensorInfo{Name: name + ".weight", DType: "U32", Shape: shape(in * int64(bits) / 32)},
		safetensors.TensorInfo{Name: name + ".scales", DType: "BF16", Shape: shape(groups)},
		safetensors.TensorInfo{Name: name + ".biases", DType: "BF16", Shape: shape(groups)}
}

// quantRandom is a quantized matrix with uniformly random codes and scales
// (jittered per group) giving weights of standard deviation sigma, centred.
// The codes are not computed from real values: random bits are as good and
// much cheaper, which matters for 40 GB of experts.
func (g *synthGen) quantRandom(name string, lead []int64, out, in int64, bits int, sigma float64) []synthTensor {
	wt, sc, bi := g.quantTensors(name, lead, out, in, bits)
	levels := float64(int(1)<<bits - 1)
	step := sigma / math.Sqrt((levels*levels+2*levels)/12) // sd of a uniform code is sqrt(((L+1)^2-1)/12)
	groups := func(w io.Writer, bias bool) error {
		r := newSplitmix(g.seed(name + ".groups"))
		n := sc.Bytes() / 2
		buf := make([]byte, 0, 1<<16)
		for i := range n {
			s := kernels.F32ToBF16(float32(step * (0.75 + 0.5*r.float())))
			v := s
			if bias {
				v = kernels.F32ToBF16(-kernels.BF16ToF32(s) * float32(levels/2))
			}
			buf = binary.LittleEndian.AppendUint16(buf, v)
			if len(buf) == cap(buf) || i == n-1 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		return nil
	}
	return []synthTensor{
		{wt, func(w io.Writer) error {
			r := newSplitmix(g.seed(name + ".weight"))
			buf := make([]byte, 1<<20)
			for left := wt.Bytes(); left > 0; {
				n := min(left, int64(len(buf)))
				for i := int64(0); i < n; i += 8 {
					binary.LittleEndian.PutUint64(buf[i:], r.next())
				}
				if _, err := w.Write(buf[:n]); err != nil {
					return err
				}
				left -= n
			}
			return nil
		}},
		{sc, func(w io.Writer) error { return groups(w, false) }},
		{bi, func(w io.Writer) error { return groups(w, true) }},
	}
}

// quantRows is a quantized matrix whose real values row(r, dst) gives,
// quantized as MLX does (kernels.Quantize). Each of the three tensors
// recomputes the rows so that only a row is ever in memory.
func (g *synthGen) quantRows(name string, rows, in int64, bits int, row func(int64, []float32)) []synthTensor {
	wt, sc, bi := g.quantTensors(name, nil, rows, in, bits)
	part := func(which int) func(io.Writer) error {
		return func(w io.Writer) error {
			vals := make([]float32, in)
			var buf []byte
			for r := range rows {
				row(r, vals)
				m, err := kernels.Quantize(vals, 1, int(in), bits, g.opt.GroupSize)
				if err != nil {
					return err
				}
				switch which {
				case 0:
					for _, x := range m.Q.W {
						buf = binary.LittleEndian.AppendUint32(buf, x)
					}
				case 1:
					for _, x := range m.Q.Scales {
						buf = binary.LittleEndian.AppendUint16(buf, x)
					}
				default:
					for _, x := range m.Q.Biases {
						buf = binary.LittleEndian.AppendUint16(buf, x)
					}
				}
				if len(buf) >= 1<<20 || r == rows-1 {
					if _, err := w.Write(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			return nil
		}
	}
	return []synthTensor{{wt, part(0)}, {sc, part(1)}, {bi, part(2)}}
}

// write assigns the tensors to shards, writes them with the index and
// config.json, and reports progress.
func (g *synthGen) write() (*Result, error) {
	groups := g.tensors()
	var shards [][]synthTensor
	var cur []synthTensor
	var curBytes, total int64
	for _, grp := range groups {
		var gb int64
		for _, t := range grp {
			gb += t.Bytes()
		}
		if len(cur) > 0 && curBytes+gb > g.opt.ShardBytes {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, grp...)
		curBytes += gb
		total += gb
	}
	shards = append(shards, cur)
	res := &Result{Dir: g.opt.Out, Bytes: total, Layers: g.arch.layers, Experts: g.arch.experts, LiveTokens: g.live}
	g.progressf("synth %s: %d layers x %d experts, vocab %d (%d live), %s in %d shards to %s\n",
		g.opt.Like, g.arch.layers, g.arch.experts, g.arch.vocab, g.live, experts.FormatBytes(total), len(shards), g.opt.Out)
	weightMap := map[string]string{}
	start := time.Now()
	var done int64
	nextReport := int64(2e9)
	for i, sh := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		infos := make([]safetensors.TensorInfo, len(sh))
		for j, t := range sh {
			infos[j] = t.TensorInfo
			weightMap[t.Name] = name
		}
		err := safetensors.Write(filepath.Join(g.opt.Out, name), map[string]string{"format": "mlx"}, infos, func(j int, w io.Writer) error {
			if err := sh[j].fill(w); err != nil {
				return err
			}
			done += sh[j].Bytes()
			if done >= nextReport {
				g.progress(done, total, start)
				nextReport = done + 2e9
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		res.Shards = append(res.Shards, name)
	}
	g.progress(done, total, start)
	index := map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}
	if err := writeJSON(filepath.Join(g.opt.Out, "model.safetensors.index.json"), index); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(g.opt.Out, "config.json"), g.config()); err != nil {
		return nil, err
	}
	return res, nil
}

func (g *synthGen) progressf(format string, args ...any) {
	if g.opt.Progress != nil {
		fmt.Fprintf(g.opt.Progress, format, args...)
	}
}

func (g *synthGen) progress(done, total int64, start time.Time) {
	el := time.Since(start).Seconds()
	g.progressf("synth: %s of %s (%.0f%%), %.0f MB/s\n", experts.FormatBytes(done), experts.FormatBytes(total), 100*float64(done)/float64(total), float64(done)/1e6/max(el, 1e-9))
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// config returns config.json for the written checkpoint.
func (g *synthGen) config() map[string]any {
	a := g.arch
	layerTypes := make([]string, a.layers)
	for l := range layerTypes {
		layerTypes[l] = "linear_attention"
		if (l+1)%a.fullEvery == 0 {
			layerTypes[l] = "full_attention"
		}
	}
	text := map[string]any{
		"attention_bias": false, "attention_dropout": 0.0, "bos_token_id": a.bos, "eos_token_id": a.eos,
		"decoder_sparse_step": 1, "full_attention_interval": a.fullEvery, "head_dim": a.headDim, "hidden_act": "silu",
		"hidden_size": a.hidden, "initializer_range": 0.02, "intermediate_size": a.intermediate, "layer_types": layerTypes,
		"linear_conv_kernel_dim": a.convK, "linear_key_head_dim": a.linKD, "linear_num_key_heads": a.linKeyHeads,
		"linear_num_value_heads": a.linValueHeads, "linear_value_head_dim": a.linV, "max_position_embeddings": a.maxPos,
		"mlp_only_layers": []int{}, "moe_intermediate_size": a.moeInter, "norm_topk_prob": true,
		"num_attention_heads": a.heads, "num_experts": a.experts, "num_experts_per_tok": a.topK,
		"num_hidden_layers": a.layers, "num_key_value_heads": a.kvHeads, "output_router_logits": false,
		"partial_rotary_factor": 0.25, "rms_norm_eps": 1e-6, "rope_theta": a.ropeTheta, "router_aux_loss_coef": 0.001,
		"shared_expert_intermediate_size": a.sharedInter, "tie_word_embeddings": false, "use_cache": true, "vocab_size": a.vocab,
	}
	gs := g.opt.GroupSize
	quant := map[string]any{"group_size": gs, "bits": 4, "mode": "affine"}
	for l := range a.layers {
		for _, m := range []string{"mlp.gate", "mlp.shared_expert_gate"} {
			quant[fmt.Sprintf("%slayers.%d.%s", g.prefix, l, m)] = map[string]any{"group_size": gs, "bits": 8}
		}
	}
	synthetic := map[string]any{
		"like": g.opt.Like, "scale": g.opt.Scale, "group_size": gs, "seed": g.opt.Seed, "live_tokens": g.live,
		"note": "random weights from mlx-moe synth; routers skewed to the expert popularity of a trained model (see go doc experts.Options); token ids >= live_tokens are never generated",
	}
	if a.qwen35 {
		text["model_type"] = "qwen3_5_moe_text"
		return map[string]any{"architectures": []string{"Qwen3_5MoeForConditionalGeneration"}, "model_type": "qwen3_5_moe",
			"text_config": text, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
			"quantization": quant, "quantization_config": quant, "mlx_moe_synthetic": synthetic}
	}
	text["architectures"] = []string{"Qwen3NextForCausalLM"}
	text["model_type"] = "qwen3_next"
	text["torch_dtype"] = "bfloat16"
	text["rope_scaling"] = nil
	text["use_sliding_window"] = false
	text["quantization"] = quant
	text["quantization_config"] = quant
	text["mlx_moe_synthetic"] = synthetic
	return text
}

// splitmix is a small fast generator (SplitMix64): the synthetic weights
// only need to be cheap, deterministic and free of visible structure.
type splitmix struct{ s uint64 }

func newSplitmix(seed uint64) *splitmix { return &splitmix{seed} }

func (r *splitmix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// float is uniform in [0, 1).
func (r *splitmix) float() float64 { return float64(r.next()>>11) / (1 << 53) }

// uniform is uniform in [-a, a).
func (r *splitmix) uniform(a float64) float64 { return a * (2*r.float() - 1) }

// normal is standard normal (Box-Muller).
func (r *splitmix) normal() float64 {
	return math.Sqrt(-2*math.Log(1-r.float())) * math.Cos(2*math.Pi*r.float())
}

// perm is a random permutation of [0, n).
func (r *splitmix) perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		j := int(r.next() % uint64(i+1))
		p[i] = p[j]
		p[j] = i
	}
	return p
}
