//go:build !purego

package kernels

import "unsafe"

// AVX2+FMA forms of the GEMM microkernel and panel decoders (gemm_amd64.s).

// gemmTile is the tokens per microkernel call (tile4x3AVX2).
const gemmTile = 3

//go:noescape
func tile4x3AVX2(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int)

//go:noescape
func tile4x1AVX2(w *float32, ldw, rows int, x *float32, k int, out *float32)

//go:noescape
func dequant4AVX2(dst *float32, w *uint32, scales, biases *float32, groups, group int)

//go:noescape
func dequant8AVX2(dst *float32, w *uint32, scales, biases *float32, groups, group int)

//go:noescape
func prefetchRows(p *byte, stride, rows, n int)

//go:noescape
func prefetchRowsL2(p *byte, stride, rows, n int)

//go:noescape
func bf16AVX2(dst *float32, src *uint16, n int)

// tileKernel adds out[j*ldo+i] += Σ_c w[i*ldw+c]·x[j*ldx+c] for i < rows
// (a multiple of 4), j < nt, c < k.
func tileKernel(w []float32, ldw, rows int, x []float32, ldx, nt, k int, out []float32, ldo int) {
	k8 := k &^ 7
	if !hasAVX2FMA || k8 == 0 || rows == 0 || nt == 0 {
		tileGo(w, ldw, rows, x, ldx, nt, k, out, ldo)
		return
	}
	// The assembly does no bounds checks: touch the last element it reads
	// or writes of every operand first.
	_ = w[(rows-1)*ldw+k-1]
	_ = x[(nt-1)*ldx+k-1]
	_ = out[(nt-1)*ldo+rows-1]
	j := 0
	for ; j+3 <= nt; j += 3 {
		tile4x3AVX2(&w[0], ldw, rows, &x[j*ldx], ldx, k8, &out[j*ldo], ldo)
	}
	for ; j < nt; j++ {
		tile4x1AVX2(&w[0], ldw, rows, &x[j*ldx], k8, &out[j*ldo])
	}
	if k8 < k {
		tileGo(w[k8:], ldw, rows, x[k8:], ldx, nt, k-k8, out, ldo)
	}
}

// dequantGroups writes whole groups of a 4- or 8-bit row as float32:
// dst[j] = scales[g]*q_j + biases[g] for g = j/group.
func dequantGroups(dst []float32, w []uint32, scales, biases []float32, bits, group int) {
	groups := len(scales)
	if !hasAVX2FMA || groups == 0 || group%8 != 0 {
		dequantGroupsGo(dst, w, scales, biases, bits, group)
		return
	}
	_ = dst[groups*group-1]
	_ = w[groups*group*bits/32-1]
	_ = biases[groups-1]
	if bits == 4 {
		dequant4AVX2(&dst[0], &w[0], &scales[0], &biases[0], groups, group)
	} else {
		dequant8AVX2(&dst[0], &w[0], &scales[0], &biases[0], groups, group)
	}
}

// bf16Row converts len(src) bfloat16 values into dst.
func bf16Row(dst []float32, src []uint16) {
	n8 := len(src) &^ 7
	if hasAVX2FMA && n8 > 0 {
		_ = dst[len(src)-1]
		bf16AVX2(&dst[0], &src[0], n8)
	} else {
		n8 = 0
	}
	bf16RowGo(dst[n8:], src[n8:])
}

// prefetchPanel asks for the storage of rows r0..r0+rr, columns k0..k1 of m.
func (m *Matrix) prefetchPanel(r0, rr, k0, k1 int) {
	if rr <= 0 {
		return
	}
	switch {
	case m.Q != nil:
		words := m.Cols * m.Q.Bits / 32
		i := r0*words + k0*m.Q.Bits/32
		_ = m.Q.W[i+(rr-1)*words]
		prefetchRows((*byte)(unsafe.Pointer(&m.Q.W[i])), 4*words, rr, (k1-k0)*m.Q.Bits/8)
	case m.BF16 != nil:
		i := r0*m.Cols + k0
		_ = m.BF16[i+(rr-1)*m.Cols]
		prefetchRows((*byte)(unsafe.Pointer(&m.BF16[i])), 2*m.Cols, rr, (k1-k0)*2)
	case m.F32 != nil:
		i := r0*m.Cols + k0
		_ = m.F32[i+(rr-1)*m.Cols]
		prefetchRows((*byte)(unsafe.Pointer(&m.F32[i])), 4*m.Cols, rr, (k1-k0)*4)
	}
}

// prefetchFloatsL2 asks for rows rows of n floats, stride floats apart,
// starting at x[0] (all inside x), to be brought into L2.
func prefetchFloatsL2(x []float32, stride, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = x[(rows-1)*stride+n-1]
	prefetchRowsL2((*byte)(unsafe.Pointer(&x[0])), 4*stride, rows, 4*n)
}

// prefetchHalfL2 is prefetchFloatsL2 for half-precision values.
func prefetchHalfL2(x []uint16, stride, rows, n int) {
	if rows <= 0 || n <= 0 {
		return
	}
	_ = x[(rows-1)*stride+n-1]
	prefetchRowsL2((*byte)(unsafe.Pointer(&x[0])), 2*stride, rows, 2*n)
}
