package kernels

import "math"

// RMSNorm normalises each of rows rows of x (length dim) by its root mean
// square and multiplies by w (nil: no weight): out = x / rms(x) * w.
func RMSNorm(out, x, w []float32, rows, dim int, eps float32) {
	for r := 0; r < rows; r++ {
		xs := x[r*dim : (r+1)*dim]
		os := out[r*dim : (r+1)*dim]
		inv := float32(1 / math.Sqrt(float64(sumSquares(xs)/float32(dim)+eps)))
		if w == nil {
			for i, v := range xs {
				os[i] = v * inv
			}
			continue
		}
		scaleMul(os, xs, w[:dim], inv)
	}
}

// sumSquaresGo is the reference of sumSquares: Σ x² in one running sum (the
// assembly keeps 32 partial sums: the same terms in another order).
func sumSquaresGo(x []float32) float32 {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	return ss
}

// scaleMulGo is the reference of scaleMul: out = x·s·w.
func scaleMulGo(out, x, w []float32, s float32) {
	out, w = out[:len(x)], w[:len(x)]
	for i, v := range x {
		out[i] = v * s * w[i]
	}
}

// Silu is x * sigmoid(x).
func Silu(x float32) float32 { return x / (1 + float32(math.Exp(float64(-x)))) }

// Sigmoid is 1 / (1 + e^-x).
func Sigmoid(x float32) float32 { return 1 / (1 + float32(math.Exp(float64(-x)))) }

// swigluGo is the reference of SwiGLU: out = silu(gate) * up.
func swigluGo(out, gate, up []float32) {
	out, up = out[:len(gate)], up[:len(gate)]
	for i, g := range gate {
		out[i] = Silu(g) * up[i]
	}
}

// expVecGo is the reference of ExpVec.
func expVecGo(out, x []float32) {
	out = out[:len(x)]
	for i, v := range x {
		out[i] = float32(math.Exp(float64(v)))
	}
}

// sigmoidVecGo is the reference of SigmoidVec.
func sigmoidVecGo(out, x []float32) {
	out = out[:len(x)]
	for i, v := range x {
		out[i] = Sigmoid(v)
	}
}

// siluVecGo is the reference of SiluVec.
func siluVecGo(out, x []float32) {
	out = out[:len(x)]
	for i, v := range x {
		out[i] = Silu(v)
	}
}

// addGo is the reference of Add: out = a + b.
func addGo(out, a, b []float32) {
	a, b = a[:len(out)], b[:len(out)]
	for i := range out {
		out[i] = a[i] + b[i]
	}
}

// addScaledGo is the reference of AddScaled: out += s * x.
func addScaledGo(out, x []float32, s float32) {
	out = out[:len(x)]
	for i, v := range x {
		out[i] += s * v
	}
}

// mulAddGo is the reference of mulAdd: out += a * b.
func mulAddGo(out, a, b []float32) {
	out, b = out[:len(a)], b[:len(a)]
	for i, v := range a {
		out[i] += v * b[i]
	}
}

// Softmax replaces x with its softmax, computed stably.
func Softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += e
	}
	for i := range x {
		x[i] /= sum
	}
}

// scaleGo is the reference of scale: x *= s.
func scaleGo(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}
