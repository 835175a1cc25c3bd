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

// gemmSIMD reports whether the GEMM's assembly runs here.
func gemmSIMD() bool { return hasAVX2FMA }

// tileWide runs gemmTile tokens over quads of rows (gemm_simd.go).
func tileWide(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int) {
	tile4x3AVX2(w, ldw, rows, x, ldx, k, out, ldo)
}

// tileRest runs the nt < gemmTile tokens after the whole tiles, one at a
// time.
func tileRest(w []float32, ldw, rows int, x []float32, ldx, nt, k int, out []float32, ldo int) {
	for j := 0; j < nt; j++ {
		tile4x1AVX2(&w[0], ldw, rows, &x[j*ldx], k, &out[j*ldo])
	}
}

// dequant4SIMD and dequant8SIMD decode groups whole groups of a 4- or
// 8-bit row.
func dequant4SIMD(dst *float32, w *uint32, scales, biases *float32, groups, group int) {
	dequant4AVX2(dst, w, scales, biases, groups, group)
}

func dequant8SIMD(dst *float32, w *uint32, scales, biases *float32, groups, group int) {
	dequant8AVX2(dst, w, scales, biases, groups, group)
}

// bf16SIMD converts n (a multiple of 8) bfloat16 values.
func bf16SIMD(dst *float32, src *uint16, n int) { bf16AVX2(dst, src, n) }

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
