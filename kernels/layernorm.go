package kernels

import "math"

// LayerNorm normalises each dim-sized row of x to zero mean and unit
// variance and applies the affine weight and bias (torch.nn.LayerNorm with
// elementwise_affine, PhiMoE's norms): out = (x-mean)/sqrt(var+eps)*w + b,
// var the biased variance. w and b may be nil (1 and 0). out may be x.
//
// It is not hot (two per layer over the hidden size), so there is no SIMD
// twin; the mean and variance are summed in float64, two passes.
func LayerNorm(out, x, w, b []float32, rows, dim int, eps float32) {
	for r := 0; r < rows; r++ {
		xs := x[r*dim : (r+1)*dim]
		os := out[r*dim : (r+1)*dim]
		var sum float64
		for _, v := range xs {
			sum += float64(v)
		}
		mean := sum / float64(dim)
		var ss float64
		for _, v := range xs {
			d := float64(v) - mean
			ss += d * d
		}
		inv := 1 / math.Sqrt(ss/float64(dim)+float64(eps))
		m, s := float32(mean), float32(inv)
		for i, v := range xs {
			y := (v - m) * s
			if w != nil {
				y *= w[i]
			}
			if b != nil {
				y += b[i]
			}
			os[i] = y
		}
	}
}
