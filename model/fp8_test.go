package model_test

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// fp8Values lists every finite e4m3 value with its code, sorted by value.
func fp8Values() (vals []float32, codes []uint8) {
	type vc struct {
		v float32
		c uint8
	}
	var all []vc
	for c := 0; c < 256; c++ {
		v := kernels.FP8E4M3ToF32(uint8(c))
		if !math.IsNaN(float64(v)) {
			all = append(all, vc{v, uint8(c)})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	for _, x := range all {
		vals, codes = append(vals, x.v), append(codes, x.c)
	}
	return vals, codes
}

// toFP8 quantizes a [rows, cols] matrix as DeepSeek's FP8 shards do: one
// scale per 128x128 block (weight_scale_inv), values rounded to the nearest
// e4m3 code. It returns the codes, the scales and the dequantized values.
func toFP8(w []float32, rows, cols int) ([]byte, []float32, []float32) {
	vals, codes := fp8Values()
	br, bc := (rows+127)/128, (cols+127)/128
	scales := make([]float32, br*bc)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			b := (r/128)*bc + c/128
			scales[b] = float32(math.Max(float64(scales[b]), math.Abs(float64(w[r*cols+c]))/448))
		}
	}
	q := make([]byte, len(w))
	deq := make([]float32, len(w))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			s := scales[(r/128)*bc+c/128]
			x := w[r*cols+c] / s
			i := sort.Search(len(vals), func(i int) bool { return vals[i] >= x })
			if i == len(vals) || (i > 0 && x-vals[i-1] < vals[i]-x) {
				i--
			}
			q[r*cols+c] = codes[i]
			deq[r*cols+c] = vals[i] * s
		}
	}
	return q, scales, deq
}

// TestFP8Shards rewrites the Hugging Face bf16 Qwen3-MoE fixture with its
// projection matrices in F8_E4M3 plus weight_scale_inv blocks, and checks
// that it loads to exactly the model its dequantized values describe.
func TestFP8Shards(t *testing.T) {
	src := fixture.Dir(t, "fixtures/qwen3_moe-hf-bf16")
	ix, err := model.OpenIndex(src)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	fp8, plain := map[string]fixture.Tensor{}, map[string]fixture.Tensor{}
	converted := 0
	for _, name := range ix.Names() {
		info, _ := ix.Tensor(name)
		raw, err := ix.ReadBytes(info)
		if err != nil {
			t.Fatal(err)
		}
		v := make([]float32, info.Elements())
		for i := range v {
			v[i] = kernels.BF16ToF32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		isProj := len(info.Shape) == 2 && strings.HasSuffix(name, "_proj.weight")
		if !isProj {
			fp8[name] = fixture.F32(info.Shape, v)
			plain[name] = fixture.F32(info.Shape, v)
			continue
		}
		q, scales, deq := toFP8(v, info.Shape[0], info.Shape[1])
		fp8[name] = fixture.Tensor{DType: "F8_E4M3", Shape: info.Shape, Data: q}
		fp8[strings.TrimSuffix(name, ".weight")+".weight_scale_inv"] = fixture.F32([]int{(info.Shape[0] + 127) / 128, (info.Shape[1] + 127) / 128}, scales)
		plain[name] = fixture.F32(info.Shape, deq)
		converted++
	}
	dirs := map[string]map[string]fixture.Tensor{"fp8": fp8, "plain": plain}
	logits := map[string][]float32{}
	ref := fixture.LoadReference(t, src)
	for kind, tensors := range dirs {
		dir := filepath.Join(t.TempDir(), kind)
		os.MkdirAll(dir, 0o755)
		cfg, _ := os.ReadFile(filepath.Join(src, "config.json"))
		os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
		if err := fixture.WriteSafetensors(filepath.Join(dir, "model.safetensors"), tensors); err != nil {
			t.Fatal(err)
		}
		m, err := model.Load(dir)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		rn := model.NewRunner(m, cpu.New())
		ids := ref.Prompts[0].IDs
		if logits[kind], err = rn.Forward(m.NewCache(rn.E, len(ids)), ids, false); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
	if d := maxAbsDiff(logits["fp8"], logits["plain"]); d != 0 {
		t.Fatalf("FP8 checkpoint differs from its dequantized values by %g", d)
	}
	t.Logf("%d projection matrices in FP8; logits vs bf16 reference max |Δ| %.3f (quantization error)", converted, maxAbsDiff(logits["fp8"], ref.Prompts[0].LastLogits))
}
