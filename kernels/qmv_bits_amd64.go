//go:build !purego

package kernels

import "unsafe"

// Int16-activation row kernels for the widths whose codes do not fall on
// byte or nibble boundaries (2, 3, 5 and 6 bits; qrows{2,3,5,6}Q16AVX2 in
// qmv_amd64.s). A step takes 16 codes (2·bits bytes): one 16-byte
// broadcast load, a byte shuffle that puts each code's two bytes in its
// 16-bit lane and a mask that keeps the code where it lies, at bit s of
// the lane, so the lane holds q·2^s. Lanes 2j and 2j+1 hold codes j and
// j+8 of the step (transposeBlocks), which lie at the same bit offset s, so
// VPMADDWD's pair sum is 2^s times the pair's products and each int32 lane
// of the group sum carries one fixed factor 2^s, dropped by one exact
// arithmetic shift per group. x is put in that lane order once, in Prepare.
//
// 2-bit rows of whole 128-value blocks (the usual shapes) have their own
// kernel, qrows2WQ16AVX2: VPMADDWD multiplies 16 codes whatever their
// width, so 2-bit matrices reach half of 4-bit's bytes per second only if
// their codes cost no more to unpack than 4-bit's, and reading 32 code
// bytes as 16 words, code k of every word at once, needs no shuffle and
// about one mask per 16 codes (BENCHMARKS.md, "Int16 kernels for 2, 3, 5
// and 6 bits").

//go:noescape
func qrows2Q16AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, t *q16Table)

//go:noescape
func qrows3Q16AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, t *q16Table)

//go:noescape
func qrows5Q16AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, t *q16Table)

//go:noescape
func qrows6Q16AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, t *q16Table)

//go:noescape
func qrows2WQ16AVX2(w *byte, xq *int16, scales, biases *uint16, dx, xsum, sdx, out *float32, rows, groups, steps int, f16 bool, c float32, perm *[8]uint32)

// groupLanes[group/32][j] is the group, counted from the block's first,
// of int32 lane j of qrows2WQ16AVX2's block sums: lane j holds words 2j
// and 2j+1, the block's values 16j to 16j+15.
var groupLanes = [5][8]uint32{
	1: {0, 0, 1, 1, 2, 2, 3, 3},
	2: {0, 0, 0, 0, 1, 1, 1, 1},
	4: {0, 0, 0, 0, 0, 0, 0, 0},
}

// q16Table tells qrows{2,3,5,6}Q16AVX2 how to unpack one width: the
// shuffle that puts lane l's two bytes in place, the mask that keeps its
// code and the bit offset s of each int32 lane's codes.
type q16Table struct {
	shuffle [32]byte
	mask    [16]uint16
	shift   [8]uint32
}

// q16Tables is indexed by bit width; only 2, 3, 5 and 6 are used. An int32
// lane of a group sum adds 16 products (groups of 128) of a code times
// 2^s, at most 63·2^6 (6-bit) or 31·2^7 (5-bit), and an |xq| <= 32767: under
// 2^31, so the sums cannot overflow (7 bits, 127·2^7, would).
var q16Tables = func() (t [9]q16Table) {
	for _, bits := range []int{2, 3, 5, 6} {
		bt := &t[bits]
		for l := 0; l < 16; l++ {
			// Lane l holds value k of the step (transposeBlocks).
			k := 8*(l%2) + l/2
			bit := k * bits
			// Both 128-bit halves of the register hold the step's bytes.
			pos := (l/8)*16 + 2*(l%8)
			bt.shuffle[pos] = byte(bit / 8)
			bt.shuffle[pos+1] = 0x80
			if bit/8+1 < 2*bits {
				bt.shuffle[pos+1] = byte(bit/8 + 1)
			}
			bt.mask[l] = uint16(1<<bits-1) << (bit % 8)
			bt.shift[l/2] = uint32(bit % 8)
		}
	}
	return t
}()

// q16Bits reports whether qrows{2,3,5,6}Q16AVX2 take matrices of width bits.
func q16Bits(bits int) bool { return bits == 2 || bits == 3 || bits == 5 || bits == 6 }

// qmvRowsBits16 is qmvRowsInt for the widths q16Bits names: the
// one-token kernel for each token in turn (intRowBlocks), so a token's
// results are the same bits however many tokens share the call.
func qmvRowsBits16(out []float32, d *DecodeInput, m *Matrix, lo, hi int) {
	rg := rowsOf(m)
	if lo >= hi || rg.groups == 0 {
		return
	}
	// Per row the kernels keep scale·dx per group and the bias term (64
	// bytes), and the 2-bit word kernel loads four groups' scale·dx at its
	// last block: on the stack for rows of up to 1004 groups.
	var stack [1024]float32
	sdx := stack[:]
	if need := 16 + rg.groups + 4; need > len(stack) {
		buf := getFloats(need)
		defer putFloats(buf)
		sdx = *buf
	}
	intRowBlocks(d, lo, hi, func(r0, rows, t int) {
		q16Rows(out[t*m.Rows+r0:t*m.Rows+r0+rows], d, m.Q, rg, r0, rows, t, sdx)
	})
}

// q16Rows computes rows [r0, r0+rows) for token t: by the 2-bit word
// kernel where the rows are whole 128-value blocks, else by
// qrows{2,3,5,6}Q16AVX2, which read 16 bytes from a step's start, past
// the row's end by up to 16-2·bits bytes, so when the block ends within 16
// bytes of the end of the codes' backing array its last row runs from a
// padded copy of its codes: the same kernel call on the same bytes, so
// every row's result is the same bits wherever its codes lie (a resident
// and a paged expert agree).
func q16Rows(out []float32, d *DecodeInput, q *Quant, rg quantRows, r0, rows, t int, sdx []float32) {
	wb, rowBytes, groups, steps := rg.w, rg.rowBytes, rg.groups, rg.steps
	tab := &q16Tables[q.Bits]
	gi, xi := t*groups, t*d.cols
	call := func(w *byte, row, nrows int, o *float32) {
		sg := row * groups
		xq, sc, bi, dx, xs := &d.xq16[xi], &q.Scales[sg], &q.Biases[sg], &d.qdx[gi], &d.qsum[gi]
		switch q.Bits {
		case 2:
			qrows2Q16AVX2(w, xq, sc, bi, dx, xs, &sdx[0], o, nrows, groups, steps, q.F16Scales, 0, tab)
		case 3:
			qrows3Q16AVX2(w, xq, sc, bi, dx, xs, &sdx[0], o, nrows, groups, steps, q.F16Scales, 0, tab)
		case 5:
			qrows5Q16AVX2(w, xq, sc, bi, dx, xs, &sdx[0], o, nrows, groups, steps, q.F16Scales, 0, tab)
		case 6:
			qrows6Q16AVX2(w, xq, sc, bi, dx, xs, &sdx[0], o, nrows, groups, steps, q.F16Scales, 0, tab)
		}
	}
	if wordLanes2(q.Bits, d.cols) {
		// Whole 32-byte blocks: nothing is read past a row.
		qrows2WQ16AVX2(&wb[r0*rowBytes], &d.xq16[xi], &q.Scales[r0*groups], &q.Biases[r0*groups], &d.qdx[gi], &d.qsum[gi],
			&sdx[0], &out[0], rows, groups, steps, q.F16Scales, 0, &groupLanes[steps])
		return
	}
	// The codes' backing array may go on past the matrix (a tensor in a
	// larger buffer): its capacity is what may be read.
	if 4*cap(q.W)-(r0+rows)*rowBytes >= 16 {
		call(&wb[r0*rowBytes], r0, rows, &out[0])
		return
	}
	if rows > 1 {
		call(&wb[r0*rowBytes], r0, rows-1, &out[0])
	}
	last := r0 + rows - 1
	pad := getFloats((rowBytes + 16 + 3) / 4)
	defer putFloats(pad)
	codes := unsafe.Slice((*byte)(unsafe.Pointer(&(*pad)[0])), 4*len(*pad))
	copy(codes, wb[last*rowBytes:(last+1)*rowBytes])
	call(&codes[0], last, 1, &out[rows-1])
}
