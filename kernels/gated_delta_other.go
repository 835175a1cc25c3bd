//go:build purego || !amd64

package kernels

// deltaMulAdd does C += A·B for row-major A [m, kd], B [kd, n], C [m, n]
// with leading dimensions lda, ldb, ldc (unused for m == 1).
func deltaMulAdd(c, a, b []float32, m, kd, n, lda, ldb, ldc int) {
	deltaMulAddGo(c, a, b, m, kd, n, lda, ldb, ldc)
}

// deltaSweep is the vector form of the decode step's state sweep, which
// this build does not have: it does no columns.
func deltaSweep(s, out, delta, kn, qn []float32, decay float32) int { return 0 }
