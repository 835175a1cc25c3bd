//go:build !purego

package kernels

//go:noescape
func expAVX2(out, x *float32, n int)

//go:noescape
func sigmoidAVX2(out, x *float32, n int)

//go:noescape
func siluAVX2(out, x *float32, n int)

//go:noescape
func swigluAVX2(out, gate, up *float32, n int)

// The element-wise kernels run eight lanes at a time in AVX2 assembly and
// hand the tail (and every value without AVX2+FMA) to the Go reference.
// The assembly's e^x is within 2 ulp of math.Exp (TestExpVecULP); the
// functions built on it keep the reference's operations and order.

// ExpVec writes e^x[i] to out[i]; out may alias x.
func ExpVec(out, x []float32) {
	n8 := simdLen(len(x))
	if n8 > 0 {
		_ = out[n8-1]
		expAVX2(&out[0], &x[0], n8)
	}
	expVecGo(out[n8:len(x)], x[n8:])
}

// SigmoidVec writes 1/(1+e^-x[i]) to out[i]; out may alias x.
func SigmoidVec(out, x []float32) {
	n8 := simdLen(len(x))
	if n8 > 0 {
		_ = out[n8-1]
		sigmoidAVX2(&out[0], &x[0], n8)
	}
	sigmoidVecGo(out[n8:len(x)], x[n8:])
}

// SiluVec writes x[i]·sigmoid(x[i]) to out[i]; out may alias x.
func SiluVec(out, x []float32) {
	n8 := simdLen(len(x))
	if n8 > 0 {
		_ = out[n8-1]
		siluAVX2(&out[0], &x[0], n8)
	}
	siluVecGo(out[n8:len(x)], x[n8:])
}

// SwiGLU computes out = silu(gate) * up element-wise; out may alias either.
func SwiGLU(out, gate, up []float32) {
	n8 := simdLen(len(gate))
	if n8 > 0 {
		_, _ = out[n8-1], up[n8-1]
		swigluAVX2(&out[0], &gate[0], &up[0], n8)
	}
	swigluGo(out[n8:len(gate)], gate[n8:], up[n8:])
}

// simdLen is how many of n values the assembly takes: whole vectors of
// eight, none without AVX2+FMA.
func simdLen(n int) int {
	if !hasAVX2FMA {
		return 0
	}
	return n &^ 7
}
