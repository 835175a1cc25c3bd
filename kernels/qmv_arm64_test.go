package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestQMVInt8WithoutDotProd: on NEON without the dot-product extension, a
// request for int8 activations runs the float kernels (int8 activations
// have no kernel there), so the products match the exact reference.
func TestQMVInt8WithoutDotProd(t *testing.T) {
	dot := hasDotProd
	hasDotProd = false
	defer func() { hasDotProd = dot }()
	rng := rand.New(rand.NewPCG(20, 20))
	for _, bits := range []int{4, 8} {
		m := randomQuant(rng, 9, 3*64, bits, 64, false)
		x := randVec(rng, 2*m.Cols)
		want, bound := qmvReference(x, 2, m)
		out := make([]float32, 2*m.Rows)
		withFeatures(decodePath{"simd-int8", true, 8}, func() { MatMul(out, x, 2, m) })
		for i, w := range want {
			if d := math.Abs(float64(out[i]) - w); d > bound[i] {
				t.Fatalf("%d-bit: out[%d] = %v, want %v (|diff| %.3g > %.3g)", bits, i, out[i], w, d, bound[i])
			}
		}
	}
}
