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
			for _, cached := range []bool{false, true} {
				b.Run(fmt.Sprintf("values/d%d/rows%d/cached=%v", d, r, cached), func(b *testing.B) {
					for range b.N {
						attnPVF16(r, o, d, corr, s, v, 2*d, nk, cached)
					}
					b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkAttentionF16Depth: Qwen3-Next's shape (8 query rows per kv
// head, 2 kv heads, head dim 256) over a half cache: one decode token
// after 256 positions (in cache: the kernels' arithmetic) and after 32k
// (67 MB, from memory), and a 128-token prompt chunk after 8k (each key
// block serves 128 tokens' rows, so it is in cache after the first). A
// kernel change can win the first and the last and lose the second
// (BENCHMARKS.md, "Fused f16 attention").
func BenchmarkAttentionF16Depth(b *testing.B) {
	const kvHeads, d, group = 2, 256, 8
	rng := rand.New(rand.NewPCG(31, 9))
	for _, c := range []struct{ n, pos0 int }{{1, 256}, {1, 32768}, {128, 8192}} {
		keys := c.pos0 + c.n
		k, _ := NewKVRows(KVF16, keys, kvHeads*d, 0)
		v, _ := NewKVRows(KVF16, keys, kvHeads*d, 0)
		k.Store(0, randVec(rng, keys*kvHeads*d), kvHeads*d, keys)
		v.Store(0, randVec(rng, keys*kvHeads*d), kvHeads*d, keys)
		heads := group * kvHeads
		q, out := randVec(rng, c.n*heads*d), make([]float32, c.n*heads*d)
		// Multiply-adds of the scores and the values, causal.
		flops := 0.0
		for t := range c.n {
			flops += float64(4 * heads * d * (c.pos0 + t + 1))
		}
		b.Run(fmt.Sprintf("tokens%d/pos%d", c.n, c.pos0), func(b *testing.B) {
			c0 := cpuSeconds()
			for range b.N {
				AttentionKV(out, q, k, 0, v, 0, c.n, c.pos0, heads, kvHeads, d, d, AttentionScale(d))
			}
			if s := cpuSeconds() - c0; s > 0 {
				b.ReportMetric(flops*float64(b.N)/s/1e9, "GFLOP/cpu-s")
			}
		})
	}
}
