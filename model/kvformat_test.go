package model_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// kvTol bounds the last logits' distance from the float32 reference per
// KV format, on random-weight fixtures whose routers flip an expert on
// small perturbations: half precision measured 0.0003 to 0.009, 8-bit
// 0.006 to 1.5, 4-bit 0.1 to 2.8 (logits are about ±4). They catch a
// broken cache (garbage gives errors of the logits' own size everywhere);
// quality is measured on the trained model (TestKVFormatNLL).
var kvTol = map[kernels.KVFormat]float64{kernels.KVF16: 0.02, kernels.KVQ8: 2, kernels.KVQ4: 4}

// kvTolGptOSS: the gpt-oss fixtures' routers flip on the least rounding
// (f16 caches move layer 0's output by 0.007 and flip an expert of token
// 18 at layer 2 and of token 19 at layer 3 of prompt 0; measured f16 0.014
// to 0.12, 8-bit 0.20 to 0.27, 4-bit 4.0 to 7.2). Their compact-cache path
// is checked without rounding in TestGptOSSCompactKVPath.
var kvTolGptOSS = map[kernels.KVFormat]float64{kernels.KVF16: 0.2, kernels.KVQ8: 2, kernels.KVQ4: 8}

// TestKVFormatFixtures runs every fixture's prompts with half and
// quantized KV caches, by prefill and token by token, and compares the
// last logits with the reference.
func TestKVFormatFixtures(t *testing.T) {
	supported := map[string]bool{}
	for _, s := range model.SupportedTypes() {
		supported[s] = true
	}
	for _, name := range fixture.Names(t) {
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			cfg, err := model.LoadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !supported[cfg.ModelType] {
				t.Skip(fmt.Sprintf("model_type %s not implemented", cfg.ModelType))
			}
			ref := fixture.LoadReference(t, dir)
			m, err := model.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			e := cpu.New()
			tol := kvTol
			if cfg.ModelType == "gpt_oss" {
				tol = kvTolGptOSS
			}
			for _, f := range []kernels.KVFormat{kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
				m.KVFormat = f
				rn := model.NewRunner(m, e)
				var worst float64
				for pi, p := range ref.Prompts {
					c := m.NewCache(e, len(p.IDs))
					if got, want := c.Bytes(), m.CacheBytes(len(p.IDs)); got != want {
						t.Errorf("%v: cache holds %d bytes, CacheBytes says %d", f, got, want)
					}
					logits, err := rn.Forward(c, p.IDs, false)
					if err != nil {
						t.Fatal(err)
					}
					d := maxAbsDiff(logits, p.LastLogits)
					worst = math.Max(worst, d)
					if d > tol[f] {
						t.Errorf("%v prompt %d: last logits differ by %g", f, pi, d)
					}
					prefill := append([]float32(nil), logits...)
					dc := m.NewCache(e, len(p.IDs))
					for _, id := range p.IDs {
						if logits, err = rn.Forward(dc, []int32{id}, false); err != nil {
							t.Fatal(err)
						}
					}
					if d := maxAbsDiff(logits, prefill); d > tol[f] {
						t.Errorf("%v prompt %d: decode and prefill last logits differ by %g", f, pi, d)
					}
					c.Free(e)
					dc.Free(e)
				}
				t.Logf("%v: last logits max |Δ| %.3g", f, worst)
				rn.Free()
			}
		})
	}
}

// TestKVFormatNLL: the trained model's held-out mean NLL with each KV
// format against float32; 8-bit must move it by less than 0.005 nats.
func TestKVFormatNLL(t *testing.T) {
	if testing.Short() {
		t.Skip("four formats over the held-out chunks")
	}
	m, ref := loadTrained(t)
	limit := map[kernels.KVFormat]float64{kernels.KVF32: 0, kernels.KVF16: 1e-3, kernels.KVQ8: 0.005, kernels.KVQ4: math.Inf(1)}
	var base float64
	for _, f := range []kernels.KVFormat{kernels.KVF32, kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
		m.KVFormat = f
		rn := model.NewRunner(m, cpu.New())
		var sum float64
		for _, ch := range ref.Heldout.Chunks {
			nll, err := rn.MeanNLL(ch.IDs)
			if err != nil {
				t.Fatal(err)
			}
			sum += nll
		}
		mean := sum / float64(len(ref.Heldout.Chunks))
		if f == kernels.KVF32 {
			base = mean
		}
		t.Logf("%v: held-out mean NLL %.5f (Δ %+.5f)", f, mean, mean-base)
		if d := math.Abs(mean - base); d > limit[f] {
			t.Errorf("%v: mean NLL moved by %.5f nats (limit %g)", f, d, limit[f])
		}
	}
}
