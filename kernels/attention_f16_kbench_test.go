package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAttentionF16Kernels: the fused score and value kernels alone
// over one block of keys in cache, by rows and head dim; GFLOP/s counts a
// multiply-add as two.
func BenchmarkAttentionF16Kernels(b *testing.B) {
	rng := rand.New(rand.NewPCG(31, 8))
	for _, d := range []int{64, 256} {
		for _, r := range []int{2, 4, 8} {
			nk := attnKeys
			k, v := randHalf(rng, nk*2*d), randHalf(rng, nk*2*d)
			q, o := randVec(rng, r*d), randVec(rng, r*d)
			s := make([]float32, attnKeys*8)
			corr := []float32{1, 1, 1, 1, 1, 1, 1, 1}
			flops := float64(2 * r * d * nk)
			b.Run(fmt.Sprintf("scores/d%d/rows%d", d, r), func(b *testing.B) {
				for range b.N {
					attnScoresF16(r, s, q, d, k, 2*d, nk)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			b.Run(fmt.Sprintf("values/d%d/rows%d", d, r), func(b *testing.B) {
				for range b.N {
					attnPVF16(r, o, d, corr, s, v, 2*d, nk)
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
