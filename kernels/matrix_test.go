package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomQuant builds a random quantized matrix directly in the packed
// format (so the test does not depend on the quantizer).
func randomQuant(rng *rand.Rand, rows, cols, bits, group int, f16 bool) *Matrix {
	q := &Quant{Bits: bits, GroupSize: group, F16Scales: f16,
		W: make([]uint32, rows*cols*bits/32), Scales: make([]uint16, rows*cols/group), Biases: make([]uint16, rows*cols/group)}
	for i := range q.W {
		q.W[i] = rng.Uint32()
	}
	for i := range q.Scales {
		if f16 {
			q.Scales[i] = 0x2000 | uint16(rng.IntN(0x400)) // small positive halves
			q.Biases[i] = 0xa000 | uint16(rng.IntN(0x400)) // small negative halves
		} else {
			q.Scales[i] = F32ToBF16(float32(rng.NormFloat64() * 0.02))
			q.Biases[i] = F32ToBF16(float32(rng.NormFloat64() * 0.1))
		}
	}
	return &Matrix{Rows: rows, Cols: cols, Q: q}
}

// naiveElement dequantizes one element from the bit stream definition.
func naiveElement(m *Matrix, r, c int) float64 {
	q := m.Q
	bitsPerRow := m.Cols * q.Bits
	var v uint64
	for b := 0; b < q.Bits; b++ {
		bit := r*bitsPerRow + c*q.Bits + b
		v |= uint64(q.W[bit/32]>>(bit%32)&1) << b
	}
	s, bias := q.scale(r*(m.Cols/q.GroupSize) + c/q.GroupSize)
	return float64(s)*float64(v) + float64(bias)
}

// TestMatMulAgainstNaive checks every bit width and group size, bf16 and
// fp16 scales, for the decode (fused) and prefill (dequantize) paths.
func TestMatMulAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, bits := range []int{2, 3, 4, 5, 6, 8} {
		for _, group := range []int{32, 64, 128} {
			for _, f16 := range []bool{false, true} {
				rows, cols := 37, 256
				m := randomQuant(rng, rows, cols, bits, group, f16)
				if err := m.Check(); err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1, 3, 9} {
					x := make([]float32, n*cols)
					for i := range x {
						x[i] = float32(rng.NormFloat64())
					}
					out := make([]float32, n*rows)
					MatMul(out, x, n, m)
					for tk := 0; tk < n; tk++ {
						for r := 0; r < rows; r++ {
							var want float64
							for c := 0; c < cols; c++ {
								want += naiveElement(m, r, c) * float64(x[tk*cols+c])
							}
							if d := math.Abs(float64(out[tk*rows+r]) - want); d > 1e-3*(1+math.Abs(want)) {
								t.Fatalf("bits %d group %d f16 %v n %d: out[%d,%d] = %g, want %g", bits, group, f16, n, tk, r, out[tk*rows+r], want)
							}
						}
					}
				}
			}
		}
	}
}

func TestDenseMatMul(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	rows, cols, n := 5, 7, 3
	w := make([]float32, rows*cols)
	bf := make([]uint16, rows*cols)
	for i := range w {
		bf[i] = F32ToBF16(float32(rng.NormFloat64()))
		w[i] = BF16ToF32(bf[i])
	}
	x := make([]float32, n*cols)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for _, m := range []*Matrix{{Rows: rows, Cols: cols, F32: w}, {Rows: rows, Cols: cols, BF16: bf}} {
		out := make([]float32, n*rows)
		MatMul(out, x, n, m)
		for tk := 0; tk < n; tk++ {
			for r := 0; r < rows; r++ {
				var want float64
				for c := 0; c < cols; c++ {
					want += float64(w[r*cols+c]) * float64(x[tk*cols+c])
				}
				if math.Abs(float64(out[tk*rows+r])-want) > 1e-5 {
					t.Fatalf("out[%d,%d] = %g, want %g", tk, r, out[tk*rows+r], want)
				}
			}
		}
	}
}

func TestF16ToF32(t *testing.T) {
	for h, want := range map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x0001: 5.9604645e-08, 0x7bff: 65504, 0x0000: 0, 0x3555: 0.33325195} {
		if got := F16ToF32(h); got != want {
			t.Errorf("F16ToF32(%#04x) = %g, want %g", h, got, want)
		}
	}
}
