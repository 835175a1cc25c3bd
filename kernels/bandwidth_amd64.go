//go:build !purego

package kernels

//go:noescape
func streamSumAVX2(p *byte, n int) uint64

// streamSum is streamSumGo with 256-byte AVX2 strides where available.
func streamSum(b []byte) uint64 {
	n := len(b) &^ 255
	if !hasAVX2FMA || n == 0 {
		return streamSumGo(b)
	}
	return streamSumAVX2(&b[0], n) + streamSumGo(b[n:])
}
