//go:build purego || !amd64

package kernels

// f16Row converts half-precision values to float32.
func f16Row(dst []float32, src []uint16) { f16RowGo(dst, src) }

// f16Rows converts rows of n half-precision values (row strides ldd and
// lds) to float32.
func f16Rows(dst []float32, ldd int, src []uint16, lds, rows, n int) {
	f16RowsGo(dst, ldd, src, lds, rows, n)
}

// dequantKV8 writes out = scale*code + bias for 8-bit codes, four to a
// word, one half-precision scale and bias per group values.
func dequantKV8(out []float32, q []uint32, scales, biases []uint16, group int) {
	dequantKV8Go(out, q, scales, biases, group)
}

// dequantKV4 is dequantKV8 for 4-bit codes, eight to a word.
func dequantKV4(out []float32, q []uint32, scales, biases []uint16, group int) {
	dequantKV4Go(out, q, scales, biases, group)
}
