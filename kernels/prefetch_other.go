//go:build purego || !amd64

package kernels

// The prefetches the GEMM and the attention kernels ask for are AVX2-build
// instructions (gemm_amd64.s); elsewhere they do nothing: on arm64, without
// arm64 hardware here a PRFM form could not be shown to pay over the cores'
// own prefetchers.

// prefetchPanel does nothing here.
func (m *Matrix) prefetchPanel(r0, rr, k0, k1 int) {}

// prefetchFloatsL2 does nothing here.
func prefetchFloatsL2(x []float32, stride, rows, n int) {}

// prefetchHalfL2 does nothing here.
func prefetchHalfL2(x []uint16, stride, rows, n int) {}
