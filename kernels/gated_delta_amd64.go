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
