package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// simdModes runs f with the machine's SIMD kernels and again with them
// switched off, so the assembly and the portable code are both tested on
// one machine (amd64's AVX2 and arm64's NEON flags alike).
func simdModes(t *testing.T, f func(t *testing.T)) {
	avx2, neon := hasAVX2FMA, hasNEON
	defer func() { hasAVX2FMA, hasNEON = avx2, neon }()
	for _, on := range []bool{true, false} {
		hasAVX2FMA, hasNEON = avx2 && on, neon && on
		t.Run(fmt.Sprintf("simd=%v", on && (avx2 || neon)), f)
		if !avx2 && !neon {
			return
		}
	}
}

// denseOf is m as float64 from the storage definitions (naiveElement for
// quantized matrices).
func denseOf(m *Matrix) []float64 {
	d := make([]float64, m.Rows*m.Cols)
	for r := 0; r < m.Rows; r++ {
		for c := 0; c < m.Cols; c++ {
			switch {
			case m.Q != nil:
				d[r*m.Cols+c] = naiveElement(m, r, c)
			case m.F32 != nil:
				d[r*m.Cols+c] = float64(m.F32[r*m.Cols+c])
			default:
				d[r*m.Cols+c] = float64(BF16ToF32(m.BF16[r*m.Cols+c]))
			}
		}
	}
	return d
}

// checkMatMul compares MatMul over n tokens with a float64 product,
// allowing float32 reordering relative to Σ|w·x|.
func checkMatMul(t *testing.T, what string, m *Matrix, n int, rng *rand.Rand) {
	t.Helper()
	w := denseOf(m)
	x := randVec(rng, n*m.Cols)
	out := make([]float32, n*m.Rows)
	MatMul(out, x, n, m)
	for tk := 0; tk < n; tk++ {
		for r := 0; r < m.Rows; r++ {
			var want, mag float64
			for c := 0; c < m.Cols; c++ {
				p := w[r*m.Cols+c] * float64(x[tk*m.Cols+c])
				want += p
				mag += math.Abs(p)
			}
			if d := math.Abs(float64(out[tk*m.Rows+r]) - want); d > 1e-5*(1+mag) {
				t.Fatalf("%s: out[%d,%d] = %g, want %g", what, tk, r, out[tk*m.Rows+r], want)
			}
		}
	}
}

// TestGEMMQuant: every bit width, group size and scale type on ragged
// shapes: rows not a multiple of 4 or of the panel, columns spanning
// several column blocks, token counts around the microkernel's 3 and the
// token block.
func TestGEMMQuant(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 1))
		for _, bits := range []int{2, 3, 4, 5, 6, 8} {
			for _, group := range []int{32, 64, 128} {
				for _, f16 := range []bool{false, true} {
					rows := []int{1, 4, 17, 37}[rng.IntN(4)]
					cols := group * []int{1, 3, 7, 13}[rng.IntN(4)]
					m := randomQuant(rng, rows, cols, bits, group, f16)
					for _, n := range []int{5, 7, 8} {
						checkMatMul(t, fmt.Sprintf("%d-bit g%d f16=%v [%d,%d] n=%d", bits, group, f16, rows, cols, n), m, n, rng)
					}
				}
			}
		}
		// Groups that are not whole 8-column runs (decoded by the generic
		// path) and ones smaller than the usual 32.
		for _, c := range []struct{ bits, group, cols int }{{8, 12, 60}, {8, 4, 44}, {4, 16, 400}, {4, 8, 24}} {
			m := randomQuant(rng, 9, c.cols, c.bits, c.group, false)
			if err := m.Check(); err != nil {
				t.Fatal(err)
			}
			checkMatMul(t, fmt.Sprintf("%d-bit g%d [9,%d]", c.bits, c.group, c.cols), m, 7, rng)
		}
		// More tokens than one token block, more columns than one column block.
		checkMatMul(t, "4-bit [21,1024] n=gemmTokens+4", randomQuant(rng, 21, 1024, 4, 64, false), gemmTokens+4, rng)
	})
}

// TestGEMMDense: f32 and bf16 at every column count modulo 8 (tails the
// microkernel leaves to the scalar pass) and every token count.
func TestGEMMDense(t *testing.T) {
	simdModes(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 2))
		for _, cols := range []int{1, 7, 8, 9, 15, 16, 31, 100, 403} {
			rows := 1 + rng.IntN(40)
			w := randVec(rng, rows*cols)
			bf := make([]uint16, len(w))
			for i := range w {
				bf[i] = F32ToBF16(w[i])
			}
			for _, n := range []int{1, 2, 3, 4, 6, 11} {
				checkMatMul(t, fmt.Sprintf("f32 [%d,%d] n=%d", rows, cols, n), &Matrix{Rows: rows, Cols: cols, F32: w}, n, rng)
				checkMatMul(t, fmt.Sprintf("bf16 [%d,%d] n=%d", rows, cols, n), &Matrix{Rows: rows, Cols: cols, BF16: bf}, n, rng)
			}
		}
	})
}

// TestTileKernel: the microkernel alone against tileGo at every row count,
// token count (whole SIMD tiles of 3 or 4 and the single-token remainder)
// and column count (k < 8, multiples of 8 and tails the SIMD forms leave
// to tileGo), with strides larger than the widths.
func TestTileKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 3))
	for _, rows := range []int{4, 8, 12, 16} {
		for nt := 1; nt <= 9; nt++ {
			for _, k := range []int{1, 4, 7, 8, 13, 16, 24, 40, 385, 392} {
				ldw, ldx, ldo := k+3, k+5, rows+2
				w, x := randVec(rng, rows*ldw), randVec(rng, nt*ldx)
				init := randVec(rng, nt*ldo)
				got, want := append([]float32(nil), init...), append([]float32(nil), init...)
				tileKernel(w, ldw, rows, x, ldx, nt, k, got, ldo)
				tileGo(w, ldw, rows, x, ldx, nt, k, want, ldo)
				close32(t, fmt.Sprintf("tile rows %d nt %d k %d", rows, nt, k), got, want, 1e-5*math.Sqrt(float64(k)))
			}
		}
	}
}

// TestDequantGroups: the panel decoders against the portable forms, on
// groups that are whole SIMD steps (32 4-bit or 16 8-bit codes) and ones
// that end in a step of 8; and bf16 rows of every length modulo 8, which
// must convert bit for bit.
func TestDequantGroups(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 4))
	for _, bits := range []int{4, 8} {
		for _, group := range []int{8, 16, 24, 32, 40, 64, 72, 128} {
			groups := 1 + rng.IntN(5)
			w := make([]uint32, groups*group*bits/32)
			for i := range w {
				w[i] = rng.Uint32()
			}
			s, b := randVec(rng, groups), randVec(rng, groups)
			got, want := make([]float32, groups*group), make([]float32, groups*group)
			dequantGroups(got, w, s, b, bits, group)
			dequantGroupsGo(want, w, s, b, bits, group)
			close32(t, fmt.Sprintf("dequant %d-bit group %d", bits, group), got, want, 1e-6)
		}
	}
	for _, n := range []int{0, 1, 7, 8, 9, 16, 29, 40} {
		src := make([]uint16, n)
		for i := range src {
			src[i] = uint16(rng.Uint32())
		}
		got, want := make([]float32, n), make([]float32, n)
		bf16Row(got, src)
		bf16RowGo(want, src)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("bf16Row(len %d)[%d] = %g, want %g", n, i, got[i], want[i])
			}
		}
	}
}

// FuzzGEMM: arbitrary shapes, widths and token counts against the float64
// product, with and without SIMD.
func FuzzGEMM(f *testing.F) {
	f.Add(uint8(4), uint8(1), uint16(9), uint8(3), uint8(5), false, uint64(1))
	f.Add(uint8(3), uint8(0), uint16(1), uint8(1), uint8(11), true, uint64(2))
	f.Add(uint8(0), uint8(2), uint16(30), uint8(2), uint8(6), false, uint64(3))
	f.Fuzz(func(t *testing.T, bits, groupSel uint8, rows uint16, colMul, n uint8, f16 bool, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 5))
		r := 1 + int(rows)%64
		nt := 1 + int(n)%20
		var m *Matrix
		switch b := int(bits) % 8; b {
		case 0, 1: // dense, any column count
			cols := 1 + int(colMul)%300
			w := randVec(rng, r*cols)
			m = &Matrix{Rows: r, Cols: cols, F32: w}
			if b == 1 {
				bf := make([]uint16, len(w))
				for i := range w {
					bf[i] = F32ToBF16(w[i])
				}
				m = &Matrix{Rows: r, Cols: cols, BF16: bf}
			}
		case 7:
			return
		default:
			group := []int{32, 64, 128}[int(groupSel)%3]
			m = randomQuant(rng, r, group*(1+int(colMul)%12), []int{2, 3, 4, 5, 6, 8}[b-2], group, f16)
		}
		avx2, neon := hasAVX2FMA, hasNEON
		defer func() { hasAVX2FMA, hasNEON = avx2, neon }()
		checkMatMul(t, "simd", m, nt, rng)
		hasAVX2FMA, hasNEON = false, false
		checkMatMul(t, "portable", m, nt, rng)
	})
}

// BenchmarkGEMM: a 512-token prompt through a 4096x14336 matrix (ggml's
// MUL_MAT m=4096 k=14336 n=512 shape): 4- and 8-bit group 64 and bf16.
func BenchmarkGEMM(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 3))
	const rows, cols, n = 4096, 14336, 512
	x := randVec(rng, n*cols)
	out := make([]float32, n*rows)
	for _, name := range []string{"4bit", "8bit", "bf16"} {
		b.Run(name, func(b *testing.B) {
			var m *Matrix
			switch name {
			case "4bit":
				m = randomQuant(rng, rows, cols, 4, 64, false)
			case "8bit":
				m = randomQuant(rng, rows, cols, 8, 64, false)
			default:
				w := make([]uint16, rows*cols)
				for i := range w {
					w[i] = F32ToBF16(float32(rng.NormFloat64() * 0.02))
				}
				m = &Matrix{Rows: rows, Cols: cols, BF16: w}
			}
			b.ResetTimer()
			c0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				MatMul(out, x, n, m)
			}
			reportFlops(b, 2*rows*cols*n*float64(b.N), c0)
		})
	}
}

// BenchmarkGEMMTile: the microkernel alone on an L1-resident panel, one
// thread: the compute limit the GEMM is measured against.
func BenchmarkGEMMTile(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 4))
	const rows, k, nt = gemmPanel, gemmKC, gemmTile
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
