//go:build !purego && (amd64 || arm64)

package kernels

// The GEMM's entry points to its assembly (gemm_amd64.s, gemm_arm64.s),
// shared by the architectures: each binds gemmSIMD, tileWide, tileRest,
// dequant4SIMD, dequant8SIMD and bf16SIMD to its own kernels, and these
// check the bounds the assembly does not.

// tileKernel adds out[j*ldo+i] += Σ_c w[i*ldw+c]·x[j*ldx+c] for i < rows
// (a multiple of 4), j < nt, c < k.
func tileKernel(w []float32, ldw, rows int, x []float32, ldx, nt, k int, out []float32, ldo int) {
	k8 := k &^ 7
	if !gemmSIMD() || k8 == 0 || rows == 0 || nt == 0 {
		tileGo(w, ldw, rows, x, ldx, nt, k, out, ldo)
		return
	}
	// The assembly does no bounds checks: touch the last element it reads
	// or writes of every operand first.
	_ = w[(rows-1)*ldw+k-1]
	_ = x[(nt-1)*ldx+k-1]
	_ = out[(nt-1)*ldo+rows-1]
	j := 0
	for ; j+gemmTile <= nt; j += gemmTile {
		tileWide(&w[0], ldw, rows, &x[j*ldx], ldx, k8, &out[j*ldo], ldo)
	}
	if j < nt {
		tileRest(w, ldw, rows, x[j*ldx:], ldx, nt-j, k8, out[j*ldo:], ldo)
	}
	if k8 < k {
		tileGo(w[k8:], ldw, rows, x[k8:], ldx, nt, k-k8, out, ldo)
	}
}

// dequantGroups writes whole groups of a 4- or 8-bit row as float32:
// dst[j] = scales[g]*q_j + biases[g] for g = j/group.
func dequantGroups(dst []float32, w []uint32, scales, biases []float32, bits, group int) {
	groups := len(scales)
	if !gemmSIMD() || groups == 0 || group%8 != 0 || (bits != 4 && bits != 8) {
		dequantGroupsGo(dst, w, scales, biases, bits, group)
		return
	}
	_ = dst[groups*group-1]
	_ = w[groups*group*bits/32-1]
	_ = biases[groups-1]
	if bits == 4 {
		dequant4SIMD(&dst[0], &w[0], &scales[0], &biases[0], groups, group)
	} else {
		dequant8SIMD(&dst[0], &w[0], &scales[0], &biases[0], groups, group)
	}
}

// bf16Row converts len(src) bfloat16 values into dst.
func bf16Row(dst []float32, src []uint16) {
	n8 := len(src) &^ 7
	if gemmSIMD() && n8 > 0 {
		_ = dst[len(src)-1]
		bf16SIMD(&dst[0], &src[0], n8)
	} else {
		n8 = 0
	}
	bf16RowGo(dst[n8:], src[n8:])
}
