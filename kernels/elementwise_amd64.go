//go:build !purego

package kernels

// activationAVX2 runs activation op (act*) over n values, n a multiple of 8.
//
//go:noescape
func activationAVX2(out, x, up *float32, n, op int)

// arithAVX2 runs arithmetic op (ar*) over n values, n a multiple of 8.
//
//go:noescape
func arithAVX2(out, a, b *float32, n int, s float32, op int)

//go:noescape
func sumSquaresAVX2(x *float32, n int) float32

// The ops of activationAVX2 and arithAVX2.
const (
	actExp = iota
	actSigmoid
	actSilu
	actSwiGLU
)

const (
	arAdd = iota
	arScale
	arScaleMul
	arAddScaled
	arMulAdd
)

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
	activation(actExp, out, x, nil)
}

// SigmoidVec writes 1/(1+e^-x[i]) to out[i]; out may alias x.
func SigmoidVec(out, x []float32) {
	if !hasAVX2FMA {
		sigmoidVecGo(out, x)
		return
	}
	activation(actSigmoid, out, x, nil)
}

// SiluVec writes x[i]·sigmoid(x[i]) to out[i]; out may alias x.
func SiluVec(out, x []float32) {
	if !hasAVX2FMA {
		siluVecGo(out, x)
		return
	}
	activation(actSilu, out, x, nil)
}

// SwiGLU computes out = silu(gate) * up element-wise; out may alias either.
func SwiGLU(out, gate, up []float32) {
	if !hasAVX2FMA {
		swigluGo(out, gate, up)
		return
	}
	activation(actSwiGLU, out, gate, up)
}

// activation runs op over x (and up for actSwiGLU): whole vectors in
// place, the tail through eight-value buffers.
func activation(op int, out, x, up []float32) {
	n := len(x)
	out = out[:n]
	var u0 *float32
	if op == actSwiGLU {
		up = up[:n]
	}
	n8 := n &^ 7
	if n8 > 0 {
		if up != nil {
			u0 = &up[0]
		}
		activationAVX2(&out[0], &x[0], u0, n8, op)
	}
	if n8 < n {
		var xb, ub [8]float32
		copy(xb[:], x[n8:])
		if up != nil {
			copy(ub[:], up[n8:])
		}
		activationAVX2(&xb[0], &xb[0], &ub[0], 8, op)
		copy(out[n8:], xb[:])
	}
}

// arith runs op over out, a and b (b unused by arScale and arAddScaled):
// whole vectors in place, the tail through eight-value buffers.
func arith(op int, out, a, b []float32, s float32) {
	n := len(a)
	out = out[:n]
	var b0 *float32
	if op != arScale && op != arAddScaled {
		b = b[:n]
	}
	n8 := n &^ 7
	if n8 > 0 {
		if len(b) > 0 {
			b0 = &b[0]
		}
		arithAVX2(&out[0], &a[0], b0, n8, s, op)
	}
	if n8 < n {
		var ob, ab, bb [8]float32
		copy(ob[:], out[n8:])
		copy(ab[:], a[n8:])
		if len(b) > 0 {
			copy(bb[:], b[n8:])
		}
		arithAVX2(&ob[0], &ab[0], &bb[0], 8, s, op)
		copy(out[n8:], ob[:])
	}
}

// sumSquares is Σ x[i]².
func sumSquares(x []float32) float32 {
	if !hasAVX2FMA || len(x) < 8 {
		return sumSquaresGo(x)
	}
	n8 := len(x) &^ 7
	return sumSquaresAVX2(&x[0], n8) + sumSquaresGo(x[n8:])
}

// scaleMul writes x[i]·s·w[i] to out[i].
func scaleMul(out, x, w []float32, s float32) {
	if !hasAVX2FMA {
		scaleMulGo(out, x, w, s)
		return
	}
	arith(arScaleMul, out, x, w, s)
}

// mulAdd adds a[i]·b[i] to out[i] (fused where the assembly runs).
func mulAdd(out, a, b []float32) {
	if !hasAVX2FMA {
		mulAddGo(out, a, b)
		return
	}
	arith(arMulAdd, out, a, b, 0)
}

// AddScaled computes out += s * x element-wise (fused where the assembly
// runs).
func AddScaled(out, x []float32, s float32) {
	if !hasAVX2FMA {
		addScaledGo(out, x, s)
		return
	}
	arith(arAddScaled, out, x, nil, s)
}

// Add computes out = a + b element-wise.
func Add(out, a, b []float32) {
	if !hasAVX2FMA {
		addGo(out, a, b)
		return
	}
	arith(arAdd, out, a[:len(out)], b, 0)
}

// scale multiplies x by s in place.
func scale(x []float32, s float32) {
	if !hasAVX2FMA {
		scaleGo(x, s)
		return
	}
	arith(arScale, x, x, nil, s)
}
