package kernels

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkGEMM: a 512-token prompt through a 4096x14336 matrix (ggml's
// MUL_MAT m=4096 k=14336 n=512 shape) at 4 and 8 bits and in bf16.
func BenchmarkGEMM(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 3))
	const rows, cols, n = 4096, 14336, 512
	x := randVec(rng, n*cols)
	out := make([]float32, n*rows)
	for _, tc := range []struct {
		name string
		m    *Matrix
	}{
		{"4bit", randomQuant(rng, rows, cols, 4, 64, false)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				MatMul(out, x, n, tc.m)
			}
			reportFlops(b, 2*rows*cols*n*float64(b.N), c0)
		})
	}
}

// BenchmarkGEMMTile: the microkernel alone on an L1-resident panel, one
// thread: the compute limit the GEMM is measured against.
func BenchmarkGEMMTile(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 4))
	const rows, k, nt = gemmPanel, gemmKC, 3
	w, x := randVec(rng, rows*k), randVec(rng, nt*k)
	out := make([]float32, nt*rows)
	c0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		tileKernel(w, k, rows, x, k, nt, k, out, rows)
	}
	reportFlops(b, 2*rows*k*nt*float64(b.N), c0)
}

// reportFlops reports GFLOPS by wall time and per CPU-second used since c0
// (what one core delivers when it is not shared).
func reportFlops(b *testing.B, flops, c0 float64) {
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
	if c := cpuSeconds() - c0; c > 0 {
		b.ReportMetric(flops/c/1e9, "GFLOPS/cpu-s")
	}
}
