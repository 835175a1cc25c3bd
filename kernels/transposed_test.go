package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// matMulTransposedReference is the direct form: out[t, c] = Σ_r W[r, c]·x[t, r]
// in float64.
func matMulTransposedReference(x []float32, n int, w []float32, rows, cols int) []float64 {
	out := make([]float64, n*cols)
	for t := 0; t < n; t++ {
		for c := 0; c < cols; c++ {
			var s float64
			for r := 0; r < rows; r++ {
				s += float64(w[r*cols+c]) * float64(x[t*rows+r])
			}
			out[t*cols+c] = s
		}
	}
	return out
}

// TestMatMulTransposedMatchesReference: bf16 and float32 matrices, column
// counts that do and do not fill the last block, one token and several.
func TestMatMulTransposedMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct{ rows, cols, n int }{{64, 128, 1}, {48, 200, 3}, {128, 64, 9}, {7, 5, 2}} {
		w := randFloats(rng, c.rows*c.cols)
		b := make([]uint16, len(w))
		for i, v := range w {
			b[i] = uint16(math.Float32bits(v) >> 16)
			w[i] = BF16ToF32(b[i])
		}
		x := randFloats(rng, c.n*c.rows)
		x[0] = 0 // a zero input skips its row
		want := matMulTransposedReference(x, c.n, w, c.rows, c.cols)
		for _, m := range []*Matrix{{Rows: c.rows, Cols: c.cols, BF16: b}, {Rows: c.rows, Cols: c.cols, F32: w}} {
			out := make([]float32, c.n*c.cols)
			for i := range out {
				out[i] = float32(math.NaN()) // every output is written
			}
			MatMulTransposed(out, x, c.n, m)
			for i := range out {
				if d := math.Abs(float64(out[i]) - want[i]); !(d <= 1e-4*math.Max(1, math.Abs(want[i]))) {
					t.Fatalf("[%d,%d] n=%d bf16=%v: out[%d] = %v, want %v", c.rows, c.cols, c.n, m.BF16 != nil, i, out[i], want[i])
				}
			}
		}
	}
}

func TestMatMulTransposedAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	m := &Matrix{Rows: 64, Cols: 256, F32: randFloats(rng, 64*256)}
	x, out := randFloats(rng, 64), make([]float32, 256)
	run := func() { MatMulTransposed(out, x, 1, m) }
	run()
	if a := testing.AllocsPerRun(20, run); a != 0 {
		t.Errorf("MatMulTransposed allocates %.1f times per call", a)
	}
}
