//go:build purego || !(amd64 || arm64)

package kernels

// The portable GEMM microkernel and panel decoders, for the purego build
// and architectures without assembly.

// gemmTile is the tokens per microkernel call.
const gemmTile = 3

// tileKernel adds out[j*ldo+i] += Σ_c w[i*ldw+c]·x[j*ldx+c] for i < rows
// (a multiple of 4), j < nt, c < k.
func tileKernel(w []float32, ldw, rows int, x []float32, ldx, nt, k int, out []float32, ldo int) {
	tileGo(w, ldw, rows, x, ldx, nt, k, out, ldo)
}

// dequantGroups writes whole groups of a 4- or 8-bit row as float32:
// dst[j] = scales[g]*q_j + biases[g] for g = j/group.
func dequantGroups(dst []float32, w []uint32, scales, biases []float32, bits, group int) {
	dequantGroupsGo(dst, w, scales, biases, bits, group)
}

// bf16Row converts len(src) bfloat16 values into dst.
func bf16Row(dst []float32, src []uint16) { bf16RowGo(dst, src) }
