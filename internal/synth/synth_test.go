package synth

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/safetensors"
	"github.com/mlx-moe/mlx-moe/kernels"
)

type headerEntry struct {
	DType   string  `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// readHeader reads a safetensors header and returns its entries and the
// offset where the data starts.
func readHeader(t testing.TB, path string) (map[string]headerEntry, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, n)
	if _, err := f.Read(raw); err != nil {
		t.Fatal(err)
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	out := map[string]headerEntry{}
	for k, v := range h {
		if k == "__metadata__" {
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		out[k] = e
	}
	return out, int64(8 + n)
}

// synthModel is a written synthetic checkpoint with its tensors located.
type synthModel struct {
	dir       string
	res       *Result
	tensors   map[string]headerEntry
	files     map[string]string // tensor -> shard path
	base      map[string]int64  // shard path -> data start
	groupSize int
}

func writeSynth(t testing.TB, opt Options) *synthModel {
	t.Helper()
	var progress bytes.Buffer
	opt.Progress = &progress
	res, err := Write(opt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "(100%)") {
		t.Errorf("no final progress line:\n%s", progress.String())
	}
	m := &synthModel{dir: opt.Out, res: res, groupSize: cmp.Or(opt.GroupSize, 64), tensors: map[string]headerEntry{}, files: map[string]string{}, base: map[string]int64{}}
	var total int64
	for _, sh := range res.Shards {
		path := filepath.Join(opt.Out, sh)
		h, base := readHeader(t, path)
		st, _ := os.Stat(path)
		var end int64
		for name, e := range h {
			m.tensors[name] = e
			m.files[name] = path
			end = max(end, e.Offsets[1])
			total += e.Offsets[1] - e.Offsets[0]
		}
		m.base[path] = base
		if base%8 != 0 || base+end != st.Size() {
			t.Errorf("%s: data at %d, %d bytes, file %d bytes", sh, base, end, st.Size())
		}
	}
	if total != res.Bytes {
		t.Errorf("shards hold %d tensor bytes, result says %d", total, res.Bytes)
	}
	return m
}

func (m *synthModel) read(t testing.TB, name string) []byte {
	t.Helper()
	e, ok := m.tensors[name]
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	f, err := os.Open(m.files[name])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, e.Offsets[1]-e.Offsets[0])
	if _, err := f.ReadAt(b, m.base[m.files[name]]+e.Offsets[0]); err != nil {
		t.Fatal(err)
	}
	return b
}

// dequant returns row r of an MLX affine quantized matrix.
func (m *synthModel) dequant(w, s, b []byte, cols, bits, r int) []float32 {
	per := 32 / bits
	wordsPerRow, groups := cols/per, cols/m.groupSize
	out := make([]float32, cols)
	for j := range cols {
		word := binary.LittleEndian.Uint32(w[4*(r*wordsPerRow+j/per):])
		q := (word >> (uint(j%per) * uint(bits))) & (1<<bits - 1)
		g := r*groups + j/m.groupSize
		out[j] = kernels.BF16ToF32(binary.LittleEndian.Uint16(s[2*g:]))*float32(q) + kernels.BF16ToF32(binary.LittleEndian.Uint16(b[2*g:]))
	}
	return out
}

// TestSynthLayout checks the tensors of scaled-down synthetic models
// against the names, dtypes and shape ranks of the real MLX fixtures of the
// same families (4 layers: three linear-attention, one full-attention, as
// here).
func TestSynthLayout(t *testing.T) {
	for _, tc := range []struct{ like, fixture string }{
		{"qwen3-coder-next", "qwen3_next-4bit"},
		{"qwen3.5-397b-a17b", "qwen3_5_moe-4bit"},
	} {
		t.Run(tc.like, func(t *testing.T) {
			a := synthArchs[tc.like]
			a.layers, a.experts = 4, 20
			g := &synthGen{arch: a, opt: Options{GroupSize: 64}, prefix: "model."}
			if a.qwen35 {
				g.prefix = "language_model.model."
			}
			got := map[string]safetensors.TensorInfo{}
			for _, grp := range g.tensors() {
				for _, ts := range grp {
					got[ts.Name] = ts.TensorInfo
				}
			}
			var want map[string]headerEntry
			b, err := os.ReadFile(filepath.Join("testdata", tc.fixture+".header.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if len(want) != len(got) {
				t.Errorf("%d tensors, fixture has %d", len(got), len(want))
			}
			// config.json nests the text model like the fixture's does.
			cfg := g.config()
			var fixtureCfg map[string]any
			if b, err := os.ReadFile(filepath.Join("testdata", tc.fixture+".config.json")); err != nil || json.Unmarshal(b, &fixtureCfg) != nil {
				t.Fatalf("fixture config: %v", err)
			}
			if cfg["model_type"] != fixtureCfg["model_type"] || (cfg["text_config"] == nil) != (fixtureCfg["text_config"] == nil) {
				t.Errorf("config model_type %v, text_config %v; fixture %v, %v", cfg["model_type"], cfg["text_config"] != nil, fixtureCfg["model_type"], fixtureCfg["text_config"] != nil)
			}
			if q := cfg["quantization"].(map[string]any); q[g.prefix+"layers.3.mlp.shared_expert_gate"] == nil {
				t.Errorf("no 8-bit override for %slayers.3.mlp.shared_expert_gate", g.prefix)
			}
			for name, w := range want {
				g, ok := got[name]
				if !ok {
					t.Errorf("missing %s", name)
					continue
				}
				if g.DType != w.DType || len(g.Shape) != len(w.Shape) {
					t.Errorf("%s: %s %v, fixture %s %v", name, g.DType, g.Shape, w.DType, w.Shape)
				}
			}
		})
	}
}

// TestSynthCoderNext writes a scaled-down synthetic Qwen3-Coder-Next and
// checks the files, the shapes, config.json, the logits of unknown tokens
// and the router skew.
func TestSynthCoderNext(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	os.Mkdir(tok, 0o755)
	os.WriteFile(filepath.Join(tok, "tokenizer.json"), []byte(`{"model": {"vocab": {"a": 0, "b": 1, "c": 1800}}, "added_tokens": [{"id": 1999}]}`), 0o644)
	os.WriteFile(filepath.Join(tok, "tokenizer_config.json"), []byte(`{}`), 0o644)
	const vocab, live = 2048, 2000
	m := writeSynth(t, Options{Like: "qwen3-coder-next", Out: filepath.Join(dir, "out"), Scale: 1.0 / 16, Vocab: vocab, TokenizerDir: tok, ShardBytes: 60e6, Seed: 7})
	if m.res.Layers != 4 || m.res.Experts != 32 || m.res.LiveTokens != live || len(m.res.Shards) < 3 {
		t.Fatalf("result %+v: want 4 layers, 32 experts, %d live tokens, several shards", m.res, live)
	}
	if n, err := Bytes(Options{Like: "qwen3-coder-next", Out: "x", Scale: 1.0 / 16, Vocab: vocab}); err != nil || n != m.res.Bytes {
		t.Errorf("Bytes = %d, %v; Write wrote %d", n, err, m.res.Bytes)
	}
	t.Run("index", func(t *testing.T) {
		var idx struct {
			Metadata  map[string]int64  `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}
		b, _ := os.ReadFile(filepath.Join(m.dir, "model.safetensors.index.json"))
		if err := json.Unmarshal(b, &idx); err != nil || idx.Metadata["total_size"] != m.res.Bytes || len(idx.WeightMap) != len(m.tensors) {
			t.Errorf("index: %v, total %d, %d entries", err, idx.Metadata["total_size"], len(idx.WeightMap))
		}
		for name, shard := range idx.WeightMap {
			if filepath.Join(m.dir, shard) != m.files[name] {
				t.Errorf("index puts %s in %s, it is in %s", name, shard, m.files[name])
			}
		}
		if _, err := os.Stat(filepath.Join(m.dir, "tokenizer_config.json")); err != nil {
			t.Error(err)
		}
	})
	t.Run("shapes", func(t *testing.T) { checkSynthShapes(t, m) })
	t.Run("config", func(t *testing.T) { checkSynthConfig(t, m) })
	t.Run("unknown tokens", func(t *testing.T) {
		x := make([]float32, 2048)
		embeddingRowFor(t, m, 5, x)
		hw, hs, hb := m.read(t, "lm_head.weight"), m.read(t, "lm_head.scales"), m.read(t, "lm_head.biases")
		liveMin, deadMax := math.Inf(1), math.Inf(-1)
		for v := range vocab {
			l := dot(m.dequant(hw, hs, hb, 2048, 4, v), x)
			if v < live {
				liveMin = min(liveMin, l)
			} else {
				deadMax = max(deadMax, l)
			}
		}
		if deadMax > liveMin-5 {
			t.Errorf("logits of unknown tokens up to %.2f, of known ones down to %.2f", deadMax, liveMin)
		}
	})
	t.Run("router skew", func(t *testing.T) {
		if raceEnabled {
			t.Skip("single-goroutine numerics; too slow under the race detector")
		}
		checkRouterSkew(t, m, vocab, 7)
	})
}

func checkSynthShapes(t *testing.T, m *synthModel) {
	for name, shape := range map[string][]int64{
		"model.embed_tokens.weight":                         {2048, 256},
		"model.layers.0.linear_attn.in_proj_qkvz.weight":    {12288, 256},
		"model.layers.0.linear_attn.in_proj_ba.scales":      {64, 32},
		"model.layers.0.linear_attn.conv1d.weight":          {8192, 4, 1},
		"model.layers.0.linear_attn.out_proj.weight":        {2048, 512},
		"model.layers.3.self_attn.q_proj.weight":            {8192, 256},
		"model.layers.3.self_attn.k_proj.weight":            {512, 256},
		"model.layers.3.self_attn.o_proj.weight":            {2048, 512},
		"model.layers.1.mlp.gate.weight":                    {32, 512},
		"model.layers.1.mlp.shared_expert_gate.weight":      {1, 512},
		"model.layers.2.mlp.switch_mlp.gate_proj.weight":    {32, 512, 256},
		"model.layers.2.mlp.switch_mlp.down_proj.weight":    {32, 2048, 64},
		"model.layers.2.mlp.switch_mlp.down_proj.biases":    {32, 2048, 8},
		"model.layers.2.mlp.shared_expert.down_proj.weight": {2048, 64},
		"lm_head.scales": {2048, 32},
	} {
		if got := m.tensors[name].Shape; !slices.Equal(got, shape) {
			t.Errorf("%s: shape %v, want %v", name, got, shape)
		}
	}
	// The stacked experts are contiguous per expert: this is what the pager reads.
	e := m.tensors["model.layers.2.mlp.switch_mlp.gate_proj.weight"]
	if e.Offsets[1]-e.Offsets[0] != 32*512*256*4 {
		t.Errorf("gate_proj bytes %d", e.Offsets[1]-e.Offsets[0])
	}
	// Norms are ones; random codes are not degenerate.
	if nb := m.read(t, "model.layers.0.input_layernorm.weight"); kernels.BF16ToF32(binary.LittleEndian.Uint16(nb)) != 1 {
		t.Error("norm weight is not 1")
	}
	w := m.read(t, "model.layers.2.mlp.switch_mlp.up_proj.weight")
	var ones int
	for _, x := range w[:1<<16] {
		for ; x != 0; x &= x - 1 {
			ones++
		}
	}
	if frac := float64(ones) / (8 << 16); math.Abs(frac-0.5) > 0.01 {
		t.Errorf("expert codes have %.3f of their bits set", frac)
	}
}

func checkSynthConfig(t *testing.T, m *synthModel) {
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(m.dir, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"model_type": "qwen3_next", "num_experts": 32.0, "num_experts_per_tok": 10.0, "num_hidden_layers": 4.0,
		"hidden_size": 2048.0, "head_dim": 256.0, "rope_theta": 5e6, "vocab_size": 2048.0, "moe_intermediate_size": 512.0,
		"shared_expert_intermediate_size": 512.0, "linear_num_value_heads": 32.0, "partial_rotary_factor": 0.25} {
		if cfg[k] != v {
			t.Errorf("config %s = %v, want %v", k, cfg[k], v)
		}
	}
	q := cfg["quantization"].(map[string]any)
	if g, ok := q["model.layers.3.mlp.gate"].(map[string]any); !ok || g["bits"] != 8.0 {
		t.Errorf("router quantization %v", q["model.layers.3.mlp.gate"])
	}
	if lt := cfg["layer_types"].([]any); lt[3] != "full_attention" || lt[2] != "linear_attention" {
		t.Errorf("layer types %v", lt)
	}
}

// embeddingRowFor reads and normalises token t's embedding like RMSNorm
// with unit weights.
func embeddingRowFor(t testing.TB, m *synthModel, tok int, dst []float32) {
	ew, es, eb := m.read(t, "model.embed_tokens.weight"), m.read(t, "model.embed_tokens.scales"), m.read(t, "model.embed_tokens.biases")
	copy(dst, m.dequant(ew, es, eb, len(dst), 4, tok))
	rmsnorm(dst)
}

func rmsnorm(x []float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+1e-6))
	for i := range x {
		x[i] *= inv
	}
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// checkRouterSkew routes every token's (dequantized, normalised) embedding
// through each written router and compares how often each expert is chosen
// with the targets derived from the trained model's counts.
func checkRouterSkew(t *testing.T, m *synthModel, vocab int, seed uint64) {
	const experts, k = 32, 10
	ew, es, eb := m.read(t, "model.embed_tokens.weight"), m.read(t, "model.embed_tokens.scales"), m.read(t, "model.embed_tokens.biases")
	xs := make([][]float32, vocab)
	for v := range xs {
		xs[v] = m.dequant(ew, es, eb, 2048, 4, v)
		rmsnorm(xs[v])
	}
	counts, err := trainedCounts()
	if err != nil {
		t.Fatal(err)
	}
	g := &synthGen{opt: Options{Seed: seed}}
	for l := range 4 {
		p := fmt.Sprintf("model.layers.%d.mlp.gate.", l)
		rw, rs, rb := m.read(t, p+"weight"), m.read(t, p+"scales"), m.read(t, p+"biases")
		rows := make([][]float32, experts)
		for e := range rows {
			rows[e] = m.dequant(rw, rs, rb, 2048, 8, e)
		}
		got := make([]float64, experts)
		logits := make([]float64, experts)
		for _, x := range xs {
			for e := range rows {
				logits[e] = dot(rows[e], x)
			}
			order := make([]int, experts)
			for i := range order {
				order[i] = i
			}
			sort.Slice(order, func(a, b int) bool { return logits[order[a]] > logits[order[b]] })
			for _, e := range order[:k] {
				got[e] += 1 / float64(vocab)
			}
		}
		target := inclusionTargets(popularityCurve(counts[l*len(counts)/4], experts), k)
		perm := newSplitmix(g.seed(fmt.Sprint("perm", l))).perm(experts)
		var maxErr, sumErr float64
		for rank, e := range perm {
			d := math.Abs(got[e] - target[rank])
			maxErr, sumErr = max(maxErr, d), sumErr+d
		}
		t.Logf("layer %d: mean |P - target| %.3f, max %.3f", l, sumErr/experts, maxErr)
		if maxErr > 0.05 || sumErr/experts > 0.01 {
			t.Errorf("layer %d: routing does not follow the target popularity (mean error %.3f, max %.3f)", l, sumErr/experts, maxErr)
		}
	}
}

// TestRouterOffsets checks the calibration at full scale (512 experts,
// top-10) on noise it was not fitted to.
func TestRouterOffsets(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine numerics; too slow under the race detector")
	}
	counts, err := trainedCounts()
	if err != nil {
		t.Fatal(err)
	}
	p := inclusionTargets(popularityCurve(counts[2], 512), 10)
	var sum float64
	for _, v := range p {
		sum += v
	}
	if math.Abs(sum-10) > 1e-6 || p[0] < p[511] {
		t.Fatalf("targets sum to %v, first %v last %v", sum, p[0], p[511])
	}
	o := routerOffsets(p, 10, 1)
	r := newSplitmix(99)
	z := make([]float32, 20000*512)
	for i := range z {
		z[i] = float32(r.normal())
	}
	c := make([]int, 512)
	topkCounts(o, z, 10, c)
	var maxErr, sumErr float64
	for e := range p {
		d := math.Abs(float64(c[e])/20000 - p[e])
		maxErr, sumErr = max(maxErr, d), sumErr+d
	}
	t.Logf("inclusion error: mean %.4f, max %.4f", sumErr/512, maxErr)
	if maxErr > 0.03 || sumErr/512 > 0.003 {
		t.Errorf("calibrated inclusion off by %.4f on average, up to %.4f", sumErr/512, maxErr)
	}
	// The skew is real: the top tenth of experts takes a large share.
	var top float64
	for _, v := range p[:51] {
		top += v
	}
	if top/10 < 0.3 {
		t.Errorf("top 10%% of experts take only %.2f of the routes", top/10)
	}
}

// TestQuantRowsEveryGroupSize: at every group size the quantized rows a
// checkpoint stores are kernels.Quantize's codes, scales and biases of the
// rows, laid out as MLX lays them out (the test's own dequantization of the
// stored bytes matches kernels.Matrix.Row).
func TestQuantRowsEveryGroupSize(t *testing.T) {
	const rows, cols = 5, 256
	row := func(r int64, dst []float32) {
		x := newSplitmix(uint64(r) + 1)
		for i := range dst {
			dst[i] = float32(x.uniform(2)) + float32(r)
		}
	}
	all := make([]float32, rows*cols)
	for r := range int64(rows) {
		row(r, all[r*cols:(r+1)*cols])
	}
	for _, gs := range []int{32, 64, 128} {
		for _, bits := range []int{4, 8} {
			want, err := kernels.Quantize(all, rows, cols, bits, gs)
			if err != nil {
				t.Fatal(err)
			}
			g := &synthGen{opt: Options{GroupSize: gs}}
			var parts [3]bytes.Buffer
			for i, ts := range g.quantRows("m", rows, cols, bits, row) {
				if err := ts.fill(&parts[i]); err != nil {
					t.Fatal(err)
				}
				if int64(parts[i].Len()) != ts.Bytes() {
					t.Fatalf("group %d, %d-bit: %s: %d bytes written, header says %d", gs, bits, ts.Name, parts[i].Len(), ts.Bytes())
				}
			}
			m := &synthModel{groupSize: gs}
			ref := make([]float32, cols)
			for r := range rows {
				want.Row(r, ref)
				got := m.dequant(parts[0].Bytes(), parts[1].Bytes(), parts[2].Bytes(), cols, bits, r)
				if !slices.Equal(got, ref) {
					t.Fatalf("group %d, %d-bit: row %d is not kernels.Quantize's: %v..., want %v...", gs, bits, r, got[:4], ref[:4])
				}
			}
		}
	}
	if _, err := Bytes(Options{Like: "qwen3-coder-next", Out: "x", GroupSize: 48}); err == nil || !strings.Contains(err.Error(), "group size 48") {
		t.Errorf("group size 48: %v", err)
	}
}

func TestSynthErrors(t *testing.T) {
	if _, err := Write(Options{Like: "gpt-5", Out: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "qwen3-coder-next") {
		t.Errorf("unknown model: %v", err)
	}
	if _, err := Write(Options{Like: "qwen3-coder-next", Out: t.TempDir(), Scale: 2}); err == nil {
		t.Error("scale 2 accepted")
	}
	if _, err := Bytes(Options{Like: "qwen3-coder-next", Out: t.TempDir(), Scale: math.NaN()}); err == nil {
		t.Error("scale NaN accepted")
	}
	if _, err := Write(Options{Like: "qwen3-coder-next", Out: t.TempDir(), TokenizerDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "tokenizer.json") {
		t.Errorf("missing tokenizer: %v", err)
	}
}

func TestRouteShares(t *testing.T) {
	s, err := RouteShares(3, 8, 100)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for i, v := range s {
		sum += v
		if i > 0 && v > s[i-1]+1e-12 {
			t.Fatalf("share of rank %d (%g) above rank %d (%g): not by popularity", i, v, i-1, s[i-1])
		}
	}
	if len(s) != 100 || math.Abs(sum-1) > 1e-9 || s[0] <= s[99] {
		t.Errorf("%d shares summing to %g, first %g last %g", len(s), sum, s[0], s[99])
	}
	if _, err := RouteShares(8, 8, 100); err == nil {
		t.Error("layer out of range accepted")
	}
}
