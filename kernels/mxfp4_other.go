//go:build purego || (!amd64 && !arm64)

package kernels

// mxRowsSIMD reports that no SIMD microscaling kernel exists on this build.
func mxRowsSIMD(out, x []float32, n int, m *Matrix, lo, hi int) bool { return false }
