//go:build purego || !amd64

package kernels

// qmvSIMD reports that no SIMD decode kernel exists on this build.
func qmvSIMD(out, x []float32, n int, m *Matrix) bool { return false }
