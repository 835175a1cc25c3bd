//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

// hasF16C: the half-to-float conversions (every AVX2 processor has them).
var hasF16C = cpu.X86.HasF16C

//go:noescape
func f16AVX2(dst *float32, src *uint16, n int)

//go:noescape
func f16RowsAVX2(dst *float32, ldd int, src *uint16, lds int, rows, n int)

// f16Rows converts rows of n half-precision values (row strides ldd and
// lds) to float32.
func f16Rows(dst []float32, ldd int, src []uint16, lds, rows, n int) {
	if !hasAVX2FMA || !hasF16C || n%8 != 0 || rows == 0 || n == 0 {
		f16RowsGo(dst, ldd, src, lds, rows, n)
		return
	}
	// The assembly does no bounds checks.
	_ = dst[(rows-1)*ldd+n-1]
	_ = src[(rows-1)*lds+n-1]
	f16RowsAVX2(&dst[0], ldd, &src[0], lds, rows, n)
}

//go:noescape
func dequantKV8AVX2(out *float32, q *uint32, s, b float32, n int)

//go:noescape
func dequantKV4AVX2(out *float32, q *uint32, s, b float32, n int)

// f16Row converts half-precision values to float32.
func f16Row(dst []float32, src []uint16) {
	n8 := len(src) &^ 7
	if !hasAVX2FMA || !hasF16C || n8 == 0 {
		f16RowGo(dst, src)
		return
	}
	_ = dst[len(src)-1]
	f16AVX2(&dst[0], &src[0], n8)
	f16RowGo(dst[n8:], src[n8:])
}

// dequantKV8 writes out = scale*code + bias for 8-bit codes, four to a
// word, one half-precision scale and bias per group values.
func dequantKV8(out []float32, q []uint32, scales, biases []uint16, group int) {
	if !hasAVX2FMA || group%8 != 0 {
		dequantKV8Go(out, q, scales, biases, group)
		return
	}
	for g := 0; g < len(out)/group; g++ {
		_ = out[(g+1)*group-1]
		_ = q[(g+1)*group/4-1]
		dequantKV8AVX2(&out[g*group], &q[g*group/4], F16ToF32(scales[g]), F16ToF32(biases[g]), group)
	}
}

// dequantKV4 is dequantKV8 for 4-bit codes, eight to a word.
func dequantKV4(out []float32, q []uint32, scales, biases []uint16, group int) {
	if !hasAVX2FMA || group%8 != 0 {
		dequantKV4Go(out, q, scales, biases, group)
		return
	}
	for g := 0; g < len(out)/group; g++ {
		_ = out[(g+1)*group-1]
		_ = q[(g+1)*group/8-1]
		dequantKV4AVX2(&out[g*group], &q[g*group/8], F16ToF32(scales[g]), F16ToF32(biases[g]), group)
	}
}
