package kernels

import (
	"math/rand/v2"
	"testing"
	"time"
)

// copyBandwidth is the best of five copies of a buffer much larger than the
// caches, in bytes per second: the limit a decode matvec is measured against.
func copyBandwidth() float64 {
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

// BenchmarkQMV: one token through Qwen3-Coder-Next-sized 4- and 8-bit
// matrices (group 64), as weight GB/s and as a fraction of the copy
// bandwidth measured in the same run.
func BenchmarkQMV(b *testing.B) {
	bw := copyBandwidth()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bits := range []int{4, 8} {
		m := randomQuant(rng, 4096, 2048, bits, 64, false)
		x := randVec(rng, m.Cols)
		out := make([]float32, m.Rows)
		b.Run(map[int]string{4: "4bit", 8: "8bit"}[bits], func(b *testing.B) {
			b.SetBytes(int64(m.Bytes()))
			for i := 0; i < b.N; i++ {
				MatMul(out, x, 1, m)
			}
			rate := float64(m.Bytes()) * float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate/bw, "frac-of-copy-bw")
		})
	}
}

// BenchmarkPrepare times preparing one token's x of a Coder-Next hidden
// size (2048 values, 4-bit group 64) for each decode path: the serial step
// before every matvec and MoE region.
func BenchmarkPrepare(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := make([]float32, 2048)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	q := &Quant{Bits: 4, GroupSize: 64}
	for _, path := range []struct {
		name        string
		int8, int16 bool
	}{{"float", false, false}, {"int16", false, true}, {"int8", true, false}} {
		b.Run(path.name, func(b *testing.B) {
			defer func(i16 bool) { Int16Activations = i16 }(Int16Activations)
			Int16Activations = path.int16
			d := DecodeInput{Int8: path.int8}
			for i := 0; i < b.N; i++ {
				d.Prepare(x, 1, len(x), q)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(x)), "ns/value")
		})
	}
}
