//go:build !purego

package kernels

// NEON forms of the GEMM microkernel and panel decoders (gemm_arm64.s).

// gemmTile is the tokens per microkernel call: tile4x4NEON keeps 4 rows × 4
// tokens of accumulators and the 8 rows' and tokens' loads (two registers
// each) in NEON's 32 vector registers.
const gemmTile = 4

//go:noescape
func tile4x4NEON(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int)

//go:noescape
func tile4x1NEON(w *float32, ldw, rows int, x *float32, k int, out *float32)

//go:noescape
func dequant4NEON(dst *float32, w *uint32, scales, biases *float32, groups, group int)

//go:noescape
func dequant8NEON(dst *float32, w *uint32, scales, biases *float32, groups, group int)

//go:noescape
func bf16NEON(dst *float32, src *uint16, n int)

// tileKernel adds out[j*ldo+i] += Σ_c w[i*ldw+c]·x[j*ldx+c] for i < rows
// (a multiple of 4), j < nt, c < k.
func tileKernel(w []float32, ldw, rows int, x []float32, ldx, nt, k int, out []float32, ldo int) {
	k8 := k &^ 7
	if !hasNEON || k8 == 0 || rows == 0 || nt == 0 {
		tileGo(w, ldw, rows, x, ldx, nt, k, out, ldo)
		return
	}
	// The assembly does no bounds checks: touch the last element it reads
	// or writes of every operand first.
	_ = w[(rows-1)*ldw+k-1]
	_ = x[(nt-1)*ldx+k-1]
	_ = out[(nt-1)*ldo+rows-1]
	j := 0
	for ; j+4 <= nt; j += 4 {
		tile4x4NEON(&w[0], ldw, rows, &x[j*ldx], ldx, k8, &out[j*ldo], ldo)
	}
	for ; j < nt; j++ {
		tile4x1NEON(&w[0], ldw, rows, &x[j*ldx], k8, &out[j*ldo])
	}
	if k8 < k {
		tileGo(w[k8:], ldw, rows, x[k8:], ldx, nt, k-k8, out, ldo)
	}
}

// dequantGroups writes whole groups of a 4- or 8-bit row as float32:
// dst[j] = scales[g]*q_j + biases[g] for g = j/group.
func dequantGroups(dst []float32, w []uint32, scales, biases []float32, bits, group int) {
	groups := len(scales)
	if !hasNEON || groups == 0 || group%8 != 0 || (bits != 4 && bits != 8) {
		dequantGroupsGo(dst, w, scales, biases, bits, group)
		return
	}
	_ = dst[groups*group-1]
	_ = w[groups*group*bits/32-1]
	_ = biases[groups-1]
	if bits == 4 {
		dequant4NEON(&dst[0], &w[0], &scales[0], &biases[0], groups, group)
	} else {
		dequant8NEON(&dst[0], &w[0], &scales[0], &biases[0], groups, group)
	}
}

// bf16Row converts len(src) bfloat16 values into dst.
func bf16Row(dst []float32, src []uint16) {
	n8 := len(src) &^ 7
	if hasNEON && n8 > 0 {
		_ = dst[len(src)-1]
		bf16NEON(&dst[0], &src[0], n8)
	} else {
		n8 = 0
	}
	bf16RowGo(dst[n8:], src[n8:])
}

// The prefetches stay no-ops on arm64: without arm64 hardware here a PRFM
// form could not be shown to pay over the cores' own prefetchers.

// prefetchPanel does nothing on arm64.
func (m *Matrix) prefetchPanel(r0, rr, k0, k1 int) {}

// prefetchFloatsL2 does nothing on arm64.
func prefetchFloatsL2(x []float32, stride, rows, n int) {}

// prefetchHalfL2 does nothing on arm64.
func prefetchHalfL2(x []uint16, stride, rows, n int) {}
