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
func tile4x2NEON(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int)

//go:noescape
func tile4x1NEON(w *float32, ldw, rows int, x *float32, k int, out *float32)

//go:noescape
func dequant4NEON(dst *float32, w *uint32, scales, biases *float32, groups, group int)

//go:noescape
func dequant8NEON(dst *float32, w *uint32, scales, biases *float32, groups, group int)

//go:noescape
func bf16NEON(dst *float32, src *uint16, n int)

// gemmSIMD reports whether the GEMM's assembly runs here.
func gemmSIMD() bool { return hasNEON }

// tileWide runs gemmTile tokens over quads of rows (gemm_simd.go).
func tileWide(w *float32, ldw, rows int, x *float32, ldx, k int, out *float32, ldo int) {
	tile4x4NEON(w, ldw, rows, x, ldx, k, out, ldo)
}

// tileRest runs the nt < gemmTile tokens after the whole tiles: two
// together, then one.
func tileRest(w []float32, ldw, rows int, x []float32, ldx, nt, k int, out []float32, ldo int) {
	j := 0
	if nt >= 2 {
		tile4x2NEON(&w[0], ldw, rows, &x[0], ldx, k, &out[0], ldo)
		j = 2
	}
	if j < nt {
		tile4x1NEON(&w[0], ldw, rows, &x[j*ldx], k, &out[j*ldo])
	}
}

// dequant4SIMD and dequant8SIMD decode groups whole groups of a 4- or
// 8-bit row.
func dequant4SIMD(dst *float32, w *uint32, scales, biases *float32, groups, group int) {
	dequant4NEON(dst, w, scales, biases, groups, group)
}

func dequant8SIMD(dst *float32, w *uint32, scales, biases *float32, groups, group int) {
	dequant8NEON(dst, w, scales, biases, groups, group)
}

// bf16SIMD converts n (a multiple of 8) bfloat16 values.
func bf16SIMD(dst *float32, src *uint16, n int) { bf16NEON(dst, src, n) }
