//go:build !purego

package kernels

// NEON row kernels (qmv_arm64.s), the arm64 twins of qdot4AVX2 and
// qdot8AVX2, of the int16-activation kernels qrows4Q16AVX2 and
// qrows8Q16AVX2, and (with the dot-product extension, SDOT) of the int8
// ones for one token at a time. Other widths run the Go kernels on arm64.

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

//go:noescape
func qrows4Q16NEON(w *byte, xq *int16, corr *int32, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)

//go:noescape
func qrows8Q16NEON(w *byte, xq *int16, corr *int32, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)

// qrows4Q8NEON and qrows8Q8NEON compute rows consecutive rows for one
// token on int8 activations, xq's blocks of 32 values xstep bytes apart
// (prepareInt8's layout for several tokens).
//
//go:noescape
func qrows4Q8NEON(w *byte, xq *int8, xstep int, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)

//go:noescape
func qrows8Q8NEON(w *byte, xq *int8, xstep int, scales, biases *uint16, dx, xsum, out *float32, rows, groups, steps int, f16 bool, c float32)

// simdIntActivations reports whether integer activations of width bits
// (8 or 16) can be used for this matrix width: int16 for 4 and 8 bits,
// int8 too where the CPU has SDOT. Other widths (2, 3, 5, 6 bits) keep the
// float path here: amd64 alone has int16 kernels for them.
func simdIntActivations(bits, width int) bool {
	return hasNEON && (width == 16 || width == 8 && hasDotProd) && (bits == 4 || bits == 8)
}

// int8Block is the values per block of the int8 kernels' input
// (prepareInt8): 32, 16 bytes of 4-bit codes per load.
func int8Block(bits, group int) int { return 32 }

// simdKernels tells tests whether this build has SIMD kernels at all.
const simdKernels = true

// qmvRowsSIMD computes rows [lo, hi) of a 4- or 8-bit matrix with the NEON
// kernels; it reports false for other widths, for empty rows, without
// NEON, or when d was not prepared for them.
func qmvRowsSIMD(out []float32, d *DecodeInput, m *Matrix, lo, hi int) bool {
	q := m.Q
	if !hasNEON || m.Cols == 0 || (q.Bits != 4 && q.Bits != 8) || (q.GroupSize != 32 && q.GroupSize != 64 && q.GroupSize != 128) {
		return false
	}
	cols, g := m.Cols, rowsOf(m)
	wb, rowBytes, groups, steps := g.w, g.rowBytes, g.groups, g.steps
	if d.intBits == q.Bits && d.intWidth == 8 {
		// 4-bit codes stay unsigned (c = 0); 8-bit ones are centred.
		c := float32(0)
		if q.Bits == 8 {
			c = 128
		}
		intRowBlocks(d, lo, hi, func(r0, rows, t int) {
			gi := t * groups
			w, sc, bi, o := &wb[r0*rowBytes], &q.Scales[r0*groups], &q.Biases[r0*groups], &out[t*m.Rows+r0]
			if q.Bits == 4 {
				qrows4Q8NEON(w, &d.xq[t*32], d.n*32, sc, bi, &d.qdx[gi], &d.qsum[gi], o, rows, groups, steps, q.F16Scales, c)
			} else {
				qrows8Q8NEON(w, &d.xq[t*32], d.n*32, sc, bi, &d.qdx[gi], &d.qsum[gi], o, rows, groups, steps, q.F16Scales, c)
			}
		})
		return true
	}
	if d.intBits == q.Bits && d.intWidth == 16 {
		c := float32(int(1) << (q.Bits - 1))
		intRowBlocks(d, lo, hi, func(r0, rows, t int) {
			gi := t * groups
			w, sc, bi, o := &wb[r0*rowBytes], &q.Scales[r0*groups], &q.Biases[r0*groups], &out[t*m.Rows+r0]
			if q.Bits == 4 {
				qrows4Q16NEON(w, &d.xq16[t*cols], &d.qcorr[gi], sc, bi, &d.qdx[gi], &d.qsum[gi], o, rows, groups, steps, q.F16Scales, c)
			} else {
				qrows8Q16NEON(w, &d.xq16[t*cols], &d.qcorr[gi], sc, bi, &d.qdx[gi], &d.qsum[gi], o, rows, groups, steps, q.F16Scales, c)
			}
		})
		return true
	}
	if q.Bits == 4 && (d.permBits != 4 || d.permuted != 32) {
		return false
	}
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
