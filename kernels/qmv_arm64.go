//go:build !purego

package kernels

// NEON row kernels (qmv_arm64.s), the arm64 twins of qdot4AVX2 and
// qdot8AVX2. Other widths run the Go kernels on arm64.

//go:noescape
func qdot4NEON(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32

//go:noescape
func qdot8NEON(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32

// simdCodeBlock is the block size within which 4-bit inputs are put in
// code order (permuteCodes) for qdot4NEON (0: no permutation).
func simdCodeBlock(bits int) int {
	if hasNEON && bits == 4 {
		return 32
	}
	return 0
}

// simdIntActivations reports that arm64 has no integer-activation kernels yet.
func simdIntActivations(bits int) bool { return false }

// simdKernels tells tests whether this build has SIMD kernels at all.
const simdKernels = true

// qmvRowsSIMD computes rows [lo, hi) of a 4- or 8-bit matrix with the NEON
// kernels; it reports false for other widths, without NEON, or when d was
// not prepared for them.
func qmvRowsSIMD(out []float32, d *DecodeInput, m *Matrix, lo, hi int) bool {
	q := m.Q
	if !hasNEON || (q.Bits != 4 && q.Bits != 8) || (q.GroupSize != 32 && q.GroupSize != 64 && q.GroupSize != 128) ||
		(q.Bits == 4 && (d.permBits != 4 || d.permuted != 32)) {
		return false
	}
	cols, g := m.Cols, rowsOf(m)
	wb, rowBytes, groups, steps := g.w, g.rowBytes, g.groups, g.steps
	for r := lo; r < hi; r++ {
		w := &wb[r*rowBytes]
		sc, bi := &q.Scales[r*groups], &q.Biases[r*groups]
		for t := 0; t < d.n; t++ {
			xp, sp := &d.x[t*cols], &d.sums[t*groups]
			if q.Bits == 4 {
				out[t*m.Rows+r] = qdot4NEON(w, &d.xs[t*cols], sc, bi, sp, groups, steps, q.F16Scales)
			} else {
				out[t*m.Rows+r] = qdot8NEON(w, xp, sc, bi, sp, groups, steps, q.F16Scales)
			}
		}
	}
	return true
}
