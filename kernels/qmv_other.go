//go:build purego || (!amd64 && !arm64)

package kernels

// simdCodeBlock reports that no SIMD kernel wants a permuted input here.
func simdCodeBlock(bits int) int { return 0 }

// qmvRowsSIMD reports that no SIMD decode kernel exists on this build.
func qmvRowsSIMD(out []float32, d *DecodeInput, m *Matrix, lo, hi int) bool { return false }

// simdIntActivations reports that no integer-activation kernel exists on this build.
func simdIntActivations(bits, width int) bool { return false }

// simdKernels tells tests whether this build has SIMD kernels at all.
const simdKernels = false

// int8Block is the values per block of an int8 input (unused here).
func int8Block(bits, group int) int { return 32 }
