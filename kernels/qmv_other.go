//go:build purego || !amd64

package kernels

// simdNibbleOrder reports that no SIMD kernel wants a permuted input here.
func simdNibbleOrder() bool { return false }

// qmvRowsSIMD reports that no SIMD decode kernel exists on this build.
func qmvRowsSIMD(out []float32, d *DecodeInput, m *Matrix, lo, hi int) bool { return false }
