package model_test

import (
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// benchModels are the models the throughput benchmarks run.
func benchModels(b *testing.B) map[string]string {
	dir, err := defaultmodel.Dir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return map[string]string{
		"trained-qwen3_next": dir,
		"qwen3_moe-4bit":     fixture.Dir(b, "fixtures/qwen3_moe-4bit"),
		"qwen3_next-4bit":    fixture.Dir(b, "fixtures/qwen3_next-4bit"),
	}
}

// BenchmarkPrefill reports prompt tokens/s for a 256-token prompt.
func BenchmarkPrefill(b *testing.B) {
	for name, dir := range benchModels(b) {
		b.Run(name, func(b *testing.B) {
			m, err := model.Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			rn := model.NewRunner(m, cpu.New())
			ids := make([]int32, 256)
			for i := range ids {
				ids[i] = int32((i * 7919) % m.Config.VocabSize)
			}
			c := m.NewCache(rn.E, len(ids))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.Len = 0
				if _, err := rn.Forward(c, ids, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(ids))/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkDecode reports decode tokens/s and the weight bytes each token
// reads per second as a fraction of the memory bandwidth measured in the
// same run (BenchmarkMemoryBandwidth's copy).
func BenchmarkDecode(b *testing.B) {
	bw := memoryBandwidth()
	for name, dir := range benchModels(b) {
		b.Run(name, func(b *testing.B) {
			m, err := model.Load(dir)
			if err != nil {
				b.Fatal(err)
			}
			rn := model.NewRunner(m, cpu.New())
			c := m.NewCache(rn.E, 64+b.N)
			if _, err := rn.Forward(c, []int32{1, 2, 3, 4}, false); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := rn.Forward(c, []int32{int32(i % m.Config.VocabSize)}, false); err != nil {
					b.Fatal(err)
				}
			}
			tps := float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(tps, "tok/s")
			b.ReportMetric(tps*float64(activeBytes(m))/bw, "frac-of-mem-bw")
		})
	}
}

// activeBytes is the weight bytes one decoded token reads: everything
// resident plus TopK experts per MoE layer.
func activeBytes(m *model.Model) int {
	total := m.Embed.Bytes()/m.Config.VocabSize + m.Head.Bytes()
	for _, l := range m.Layers {
		if moe, ok := l.FFN.(*model.MoE); ok {
			g, u, d := moe.Experts.Expert(0)
			total += moe.Routing.TopK*(g.Bytes()+u.Bytes()+d.Bytes()) + moe.Router.Bytes()
			if moe.Shared != nil {
				total += moe.Shared.Gate.Bytes() + moe.Shared.Up.Bytes() + moe.Shared.Down.Bytes()
			}
		}
	}
	// Mixer weights: approximated by the attention/linear projections
	// reachable through the layer types.
	for _, l := range m.Layers {
		switch mx := l.Mixer.(type) {
		case *model.Attention:
			total += mx.Q.Bytes() + mx.K.Bytes() + mx.V.Bytes() + mx.O.Bytes()
			if mx.QGate != nil {
				total += mx.QGate.Bytes()
			}
		case *model.GatedDeltaNet:
			for _, in := range []*kernels.Matrix{mx.Q, mx.K, mx.V, mx.Z, mx.B, mx.A, mx.Out} {
				total += in.Bytes()
			}
		}
	}
	return total
}

// memoryBandwidth measures copy bandwidth (bytes read per second) over a
// buffer much larger than the caches, best of five copies.
func memoryBandwidth() float64 {
	src := make([]byte, 256<<20)
	dst := make([]byte, len(src))
	for i := range src {
		src[i] = byte(i)
	}
	best := time.Duration(1 << 62)
	for i := 0; i < 5; i++ {
		start := time.Now()
		copy(dst, src)
		best = min(best, time.Since(start))
	}
	return float64(len(src)) / best.Seconds()
}

func BenchmarkMemoryBandwidth(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(memoryBandwidth()/1e9, "GB/s")
	}
}
