//go:build purego || !(amd64 || arm64)

package kernels

// hasFusedF16 reports whether the fused f16 attention kernels run here:
// without SIMD the float32 tile is the faster path.
func hasFusedF16() bool { return false }

// attnF16: no fused kernels here (the portable forms serve the tests).
var attnF16 f16Kernels

// attnSoftmax is one key block's online softmax for r rows.
func attnSoftmax(s []float32, nk, r int, m, l, corr []float32) {
	attnSoftmaxGo(s, nk, r, m, l, corr)
}
