package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// layerNormRef is torch.nn.LayerNorm in float64.
func layerNormRef(x, w, b []float32, dim int, eps float64) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < len(x)/dim; r++ {
		row := x[r*dim : (r+1)*dim]
		var mean, v float64
		for _, a := range row {
			mean += float64(a)
		}
		mean /= float64(dim)
		for _, a := range row {
			v += (float64(a) - mean) * (float64(a) - mean)
		}
		v /= float64(dim)
		for i, a := range row {
			y := (float64(a) - mean) / math.Sqrt(v+eps)
			if w != nil {
				y *= float64(w[i])
			}
			if b != nil {
				y += float64(b[i])
			}
			out[r*dim+i] = y
		}
	}
	return out
}

func TestLayerNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 0))
	for _, dim := range []int{1, 7, 64, 300} {
		rows := 3
		x, w, b := randVec(rng, rows*dim), randVec(rng, dim), randVec(rng, dim)
		for i := range x {
			x[i] += 5 // a large mean: the two-pass variance must not cancel
		}
		for _, wb := range [][2][]float32{{w, b}, {nil, nil}, {w, nil}} {
			want := layerNormRef(x, wb[0], wb[1], dim, 1e-5)
			out := make([]float32, len(x))
			LayerNorm(out, x, wb[0], wb[1], rows, dim, 1e-5)
			for i := range out {
				if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("dim %d weight %v bias %v: out[%d] = %g, want %g", dim, wb[0] != nil, wb[1] != nil, i, out[i], want[i])
				}
			}
			in := append([]float32(nil), x...)
			LayerNorm(in, in, wb[0], wb[1], rows, dim, 1e-5)
			for i := range in {
				if in[i] != out[i] {
					t.Fatalf("dim %d: in place differs at %d", dim, i)
				}
			}
		}
	}
}
