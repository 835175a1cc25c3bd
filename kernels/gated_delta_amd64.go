//go:build !purego

package kernels

// deltaMulAdd does C += A·B for row-major A [m, kd], B [kd, n], C [m, n]
// with leading dimensions lda, ldb, ldc (unused for m == 1). It is the
// product attention adds its values with (accumPV: C's rows held in
// registers while every row of B is added in), in AVX2 where present.
func deltaMulAdd(c, a, b []float32, m, kd, n, lda, ldb, ldc int) {
	if !hasAVX2FMA || m == 0 || kd == 0 || n < 8 {
		deltaMulAddGo(c, a, b, m, kd, n, lda, ldb, ldc)
		return
	}
	accumPV(c, ldc, m, a, lda, b, ldb, kd, n)
}

//go:noescape
func deltaSweepAVX2(s, out, delta, kn, qn *float32, dk, dv, n int, decay float32)

// deltaSweep runs the decode step's state sweep (S = decay·S + k̂δᵀ, out +=
// Sᵀq̂) over the first columns of the head in AVX2 and returns how many it
// did: whole vectors of eight, none without AVX2+FMA.
func deltaSweep(s, out, delta, kn, qn []float32, decay float32) int {
	dk, dv := len(kn), len(delta)
	n8 := dv &^ 7
	if !hasAVX2FMA || n8 == 0 || dk == 0 {
		return 0
	}
	_, _, _ = s[dk*dv-1], out[dv-1], qn[dk-1]
	deltaSweepAVX2(&s[0], &out[0], &delta[0], &kn[0], &qn[0], dk, dv, n8, decay)
	return n8
}
