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

// The element-wise kernels run eight lanes at a time in AVX2 assembly; the
// last partial vector goes through the assembly too (padded on the stack),
// so a value's result never depends on where it falls in a slice (row by
// row and whole-tensor calls agree bit for bit). Without AVX2+FMA the Go
// references run. The assembly's e^x is within 2 ulp of math.Exp
// (TestExpVecULP); the functions built on it keep the references'
// operations and order.

// ExpVec writes e^x[i] to out[i]; out may alias x.
func ExpVec(out, x []float32) {
	if !hasAVX2FMA {
		expVecGo(out, x)
		return
	}
	unary(opExp, out, x)
}

// SigmoidVec writes 1/(1+e^-x[i]) to out[i]; out may alias x.
func SigmoidVec(out, x []float32) {
	if !hasAVX2FMA {
		sigmoidVecGo(out, x)
		return
	}
	unary(opSigmoid, out, x)
}

// SiluVec writes x[i]·sigmoid(x[i]) to out[i]; out may alias x.
func SiluVec(out, x []float32) {
	if !hasAVX2FMA {
		siluVecGo(out, x)
		return
	}
	unary(opSilu, out, x)
}

// The one-input assembly kernels, by number: called directly (a call
// through a func value would move the tail buffer to the heap).
const (
	opExp = iota
	opSigmoid
	opSilu
)

func unaryAVX2(op int, out, x *float32, n int) {
	switch op {
	case opExp:
		expAVX2(out, x, n)
	case opSigmoid:
		sigmoidAVX2(out, x, n)
	case opSilu:
		siluAVX2(out, x, n)
	}
}

// unary runs assembly kernel op over x: whole vectors in place, the tail
// through an eight-value buffer.
func unary(op int, out, x []float32) {
	n := len(x)
	out = out[:n]
	n8 := n &^ 7
	if n8 > 0 {
		unaryAVX2(op, &out[0], &x[0], n8)
	}
	if n8 < n {
		var buf [8]float32
		copy(buf[:], x[n8:])
		unaryAVX2(op, &buf[0], &buf[0], 8)
		copy(out[n8:], buf[:])
	}
}

// SwiGLU computes out = silu(gate) * up element-wise; out may alias either.
func SwiGLU(out, gate, up []float32) {
	if !hasAVX2FMA {
		swigluGo(out, gate, up)
		return
	}
	n := len(gate)
	out, up = out[:n], up[:n]
	n8 := n &^ 7
	if n8 > 0 {
		swigluAVX2(&out[0], &gate[0], &up[0], n8)
	}
	if n8 < n {
		var g, u [8]float32
		copy(g[:], gate[n8:])
		copy(u[:], up[n8:])
		swigluAVX2(&g[0], &g[0], &u[0], 8)
		copy(out[n8:], g[:])
	}
}

//go:noescape
func sumSquaresAVX2(x *float32, n int) float32

//go:noescape
func scaleMulAVX2(out, x, w *float32, n int, s float32)

// sumSquares is Σ x[i]².
func sumSquares(x []float32) float32 {
	n8 := simdLen(len(x))
	if n8 == 0 {
		return sumSquaresGo(x)
	}
	return sumSquaresAVX2(&x[0], n8) + sumSquaresGo(x[n8:])
}

// scaleMul writes x[i]·s·w[i] to out[i].
func scaleMul(out, x, w []float32, s float32) {
	n8 := simdLen(len(x))
	if n8 > 0 {
		_, _ = out[n8-1], w[n8-1]
		scaleMulAVX2(&out[0], &x[0], &w[0], n8, s)
	}
	scaleMulGo(out[n8:len(x)], x[n8:], w[n8:], s)
}

// simdLen is how many of n values the assembly takes: whole vectors of
// eight, none without AVX2+FMA.
func simdLen(n int) int {
	if !hasAVX2FMA {
		return 0
	}
	return n &^ 7
}

//go:noescape
func mulAddAVX2(out, a, b *float32, n int)

//go:noescape
func addScaledAVX2(out, x *float32, n int, s float32)

//go:noescape
func addAVX2(out, a, b *float32, n int)

// mulAdd adds a[i]·b[i] to out[i] (fused where the assembly runs; the tail
// through it too, so a value's result does not depend on its position).
func mulAdd(out, a, b []float32) {
	if !hasAVX2FMA {
		mulAddGo(out, a, b)
		return
	}
	n := len(a)
	out, b = out[:n], b[:n]
	n8 := n &^ 7
	if n8 > 0 {
		mulAddAVX2(&out[0], &a[0], &b[0], n8)
	}
	if n8 < n {
		var o, x, y [8]float32
		copy(o[:], out[n8:])
		copy(x[:], a[n8:])
		copy(y[:], b[n8:])
		mulAddAVX2(&o[0], &x[0], &y[0], 8)
		copy(out[n8:], o[:])
	}
}

// AddScaled computes out += s * x element-wise (fused where the assembly
// runs, the tail through it too).
func AddScaled(out, x []float32, s float32) {
	if !hasAVX2FMA {
		addScaledGo(out, x, s)
		return
	}
	n := len(x)
	out = out[:n]
	n8 := n &^ 7
	if n8 > 0 {
		addScaledAVX2(&out[0], &x[0], n8, s)
	}
	if n8 < n {
		var o, y [8]float32
		copy(o[:], out[n8:])
		copy(y[:], x[n8:])
		addScaledAVX2(&o[0], &y[0], 8, s)
		copy(out[n8:], o[:])
	}
}

// Add computes out = a + b element-wise.
func Add(out, a, b []float32) {
	n8 := simdLen(len(out))
	if n8 > 0 {
		_, _ = a[n8-1], b[n8-1]
		addAVX2(&out[0], &a[0], &b[0], n8)
	}
	addGo(out[n8:], a[n8:], b[n8:])
}

//go:noescape
func scaleAVX2(x *float32, n int, s float32)

// scale multiplies x by s in place.
func scale(x []float32, s float32) {
	n8 := simdLen(len(x))
	if n8 > 0 {
		scaleAVX2(&x[0], n8, s)
	}
	scaleGo(x[n8:], s)
}
