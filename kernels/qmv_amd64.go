//go:build !purego

package kernels

// Assembly row kernels (qmv_amd64.s): one row of a quantized matrix dotted
// with one token's x, for groups groups of steps*32 values each.

//go:noescape
func qdot4AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32

//go:noescape
func qdot2AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32

//go:noescape
func qdot8AVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool) float32

//go:noescape
func qdotBitsAVX2(w *byte, x *float32, scales, biases *uint16, xsum *float32, groups, steps int, f16 bool, t *bitsTable) float32

// qrows4Q8xNAVX2 and qrows8Q8xNAVX2 compute rows consecutive rows for N
// tokens on int8 activations (qmv_amd64.s; the layout of xq and sdx is
// prepareInt8's and the kernels' comment's): each block of codes is
// unpacked once for all N tokens.
//
//go:noescape
func qrows4Q8x1AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

//go:noescape
func qrows4Q8x2AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

//go:noescape
func qrows4Q8x3AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

//go:noescape
func qrows4Q8x4AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

//go:noescape
func qrows8Q8x1AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

//go:noescape
func qrows8Q8x2AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

//go:noescape
func qrows8Q8x3AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

//go:noescape
func qrows8Q8x4AVX2(w *byte, xq *int8, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride int)

// qrows4Q16xNAVX2 and qrows8Q16xNAVX2 are the same on int16 activations,
// each token's xq in turn, xstride bytes apart (prepareInt's layout).
//
//go:noescape
func qrows4Q16x1AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

//go:noescape
func qrows4Q16x2AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

//go:noescape
func qrows4Q16x3AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

//go:noescape
func qrows4Q16x4AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

//go:noescape
func qrows8Q16x1AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

//go:noescape
func qrows8Q16x2AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

//go:noescape
func qrows8Q16x3AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

//go:noescape
func qrows8Q16x4AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, ostride, xstride int)

// bitsTable tells qdotBitsAVX2 how to unpack eight values of one width: the
// byte shuffle that puts value j's two bytes in 32-bit lane j, the shift that
// aligns it, the mask, the bytes eight values occupy and the middle code.
type bitsTable struct {
	shuffle [32]byte
	shift   [8]uint32
	mask    [8]uint32
	stride  int64
	centre  int32
}

// bitsTables is indexed by bit width.
var bitsTables = func() (t [9]bitsTable) {
	for bits := 1; bits <= 8; bits++ {
		bt := &t[bits]
		for j := 0; j < 8; j++ {
			bit := j * bits
			lane := j % 4
			// Both 128-bit halves hold the same eight bytes (a broadcast
			// qword), so a half's shuffle indices name the same bytes.
			half := (j / 4) * 16
			bt.shuffle[half+lane*4] = byte(bit / 8)
			bt.shuffle[half+lane*4+1] = byte(bit/8 + 1)
			bt.shuffle[half+lane*4+2] = 0x80
			bt.shuffle[half+lane*4+3] = 0x80
			bt.shift[j] = uint32(bit % 8)
			bt.mask[j] = 1<<bits - 1
		}
		bt.stride = int64(bits)
		bt.centre = 1 << (bits - 1)
	}
	return t
}()

// simdCodeBlock is the block size within which inputs of bits-wide
// matrices are put in code order (permuteCodes) for qdot4AVX2 and
// qdot2AVX2 (0: no permutation).
func simdCodeBlock(bits int) int {
	switch {
	case !hasAVX2FMA:
		return 0
	case bits == 4:
		return 16
	case bits == 2:
		return 32
	}
	return 0
}

// int8Block is the values per block of the int8 kernels' interleaved
// input (prepareInt8): 64 for 4-bit groups of 64 and 128 (32 code bytes
// per load), else 32.
func int8Block(bits, group int) int {
	if bits == 4 && group >= 64 {
		return 64
	}
	return 32
}

// simdIntActivations reports whether integer activations of width bits
// (8 or 16) can be used for this matrix width: both for 4 and 8 bits,
// int16 for 2, 3, 5 and 6 bits too (qmv_bits_amd64.go). arm64 has integer
// kernels for 4 and 8 bits only and keeps the float path for the others.
func simdIntActivations(bits, width int) bool {
	return hasAVX2FMA && (bits == 4 || bits == 8 || width == 16 && q16Bits(bits))
}

// qmvRowsSIMD computes rows [lo, hi) with the AVX2 kernels; it reports
// false when the CPU lacks them, the rows are empty (the Go kernels give
// their zeros) or d was not prepared for them.
func qmvRowsSIMD(out []float32, d *DecodeInput, m *Matrix, lo, hi int) bool {
	q := m.Q
	if !hasAVX2FMA || m.Cols == 0 || q.Bits < 2 || q.Bits > 8 || (q.GroupSize != 32 && q.GroupSize != 64 && q.GroupSize != 128) {
		return false
	}
	if d.intBits == q.Bits {
		if d.intWidth == 16 && q16Bits(q.Bits) {
			qmvRowsBits16(out, d, m, lo, hi)
		} else {
			qmvRowsInt(out, d, m, lo, hi)
		}
		return true
	}
	if (q.Bits == 4 || q.Bits == 2) && (d.permBits != q.Bits || d.permuted != simdCodeBlock(q.Bits)) {
		return false
	}
	cols, g := m.Cols, rowsOf(m)
	wb, rowBytes, groups, steps := g.w, g.rowBytes, g.groups, g.steps
	table := &bitsTables[q.Bits]
	for r := lo; r < hi; r++ {
		w := wb[r*rowBytes : (r+1)*rowBytes]
		sc, bi := q.Scales[r*groups:(r+1)*groups], q.Biases[r*groups:(r+1)*groups]
		for t := 0; t < d.n; t++ {
			xp, sp := d.x[t*cols:(t+1)*cols], d.sums[t*groups:(t+1)*groups]
			if q.Bits == 4 || q.Bits == 2 {
				xp = d.xs[t*cols : (t+1)*cols]
			}
			var v float32
			switch q.Bits {
			case 4:
				v = qdot4AVX2(&w[0], &xp[0], &sc[0], &bi[0], &sp[0], groups, steps, q.F16Scales)
			case 8:
				v = qdot8AVX2(&w[0], &xp[0], &sc[0], &bi[0], &sp[0], groups, steps, q.F16Scales)
			case 2:
				v = qdot2AVX2(&w[0], &xp[0], &sc[0], &bi[0], &sp[0], groups, steps, q.F16Scales)
			default:
				v = qdotBitsRow(wb, r*rowBytes, rowBytes, xp, sc, bi, sp, groups, steps, q.F16Scales, table)
			}
			out[t*m.Rows+r] = v
		}
	}
	return true
}

// qdotBitsRow runs qdotBitsAVX2 over the row at wb[off:off+rowBytes]. The
// kernel reads up to 8 bytes past its last value, so when the row ends
// within 8 bytes of wb's end, the last group is copied into a padded
// buffer first.
func qdotBitsRow(wb []byte, off, rowBytes int, x []float32, sc, bi []uint16, sums []float32, groups, steps int, f16 bool, t *bitsTable) float32 {
	if len(wb)-(off+rowBytes) >= 8 {
		return qdotBitsAVX2(&wb[off], &x[0], &sc[0], &bi[0], &sums[0], groups, steps, f16, t)
	}
	var tail [128*8/8 + 8]byte
	groupBytes := rowBytes / groups
	last := groups - 1
	copy(tail[:], wb[off+last*groupBytes:off+rowBytes])
	v := qdotBitsAVX2(&tail[0], &x[last*len(x)/groups], &sc[last], &bi[last], &sums[last], 1, steps, f16, t)
	if last > 0 {
		v += qdotBitsAVX2(&wb[off], &x[0], &sc[0], &bi[0], &sums[0], last, steps, f16, t)
	}
	return v
}

// qmvRowsInt is qmvRowsSIMD on integer activations: one kernel call for
// all the rows and all the tokens.
func qmvRowsInt(out []float32, d *DecodeInput, m *Matrix, lo, hi int) {
	q := m.Q
	rg := rowsOf(m)
	wb, rowBytes, groups, steps := rg.w, rg.rowBytes, rg.groups, rg.steps
	if lo >= hi || groups == 0 {
		return
	}
	// Per row the kernels keep scale·dx per group and token and each
	// token's bias term: on the stack for rows of up to 240 groups (15,360
	// values at group 64), so a MoE region's many short calls skip the
	// free list (and the kernels are called directly, not through a table,
	// which would move this buffer to the heap).
	var stack [1024]float32
	sdx := &stack[0]
	if need := d.n * (16 + groups); need > len(stack) {
		buf := getFloats(need)
		defer putFloats(buf)
		sdx = &(*buf)[0]
	}
	w, sc, bi, o := &wb[lo*rowBytes], &q.Scales[lo*groups], &q.Biases[lo*groups], &out[lo]
	dx, xsum, rows, f16, os := &d.qdx[0], &d.qsum[0], hi-lo, q.F16Scales, m.Rows
	if d.intWidth == 16 {
		// Codes stay unsigned (c = 0).
		xq, xs := &d.xq16[0], 2*m.Cols
		switch 10*q.Bits + d.n {
		case 41:
			qrows4Q16x1AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		case 42:
			qrows4Q16x2AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		case 43:
			qrows4Q16x3AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		case 44:
			qrows4Q16x4AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		case 81:
			qrows8Q16x1AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		case 82:
			qrows8Q16x2AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		case 83:
			qrows8Q16x3AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		case 84:
			qrows8Q16x4AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os, xs)
		}
		return
	}
	// The 4-bit int8 kernels keep codes unsigned (c = 0), the 8-bit ones
	// centre them (c = 128).
	xq := &d.xq[0]
	switch 10*q.Bits + d.n {
	case 41:
		qrows4Q8x1AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os)
	case 42:
		qrows4Q8x2AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os)
	case 43:
		qrows4Q8x3AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os)
	case 44:
		qrows4Q8x4AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 0, os)
	case 81:
		qrows8Q8x1AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 128, os)
	case 82:
		qrows8Q8x2AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 128, os)
	case 83:
		qrows8Q8x3AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 128, os)
	case 84:
		qrows8Q8x4AVX2(w, xq, sc, bi, dx, xsum, sdx, o, rows, groups, steps, f16, 128, os)
	}
}

// simdKernels tells tests whether this build has SIMD kernels at all.
const simdKernels = true
