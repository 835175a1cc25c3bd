//go:build !purego

package kernels

import "unsafe"

//go:noescape
func mxdot4NEON(w *byte, x *float32, scales *byte, table *float32, lut *byte, groups int) float32

// e2m1Doubled is twice each E2M1 value, as int8, for mxdot4NEON's TBL.
var e2m1Doubled = [16]int8{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// mxRowsSIMD computes rows [lo, hi) of an MXFP4 matrix with mxdot4NEON; it
// reports false for other modes or without NEON.
func mxRowsSIMD(out, x []float32, n int, m *Matrix, lo, hi int) bool {
	q := m.MX
	if !hasNEON || q.Mode != MXFP4 {
		return false
	}
	rowBytes, groups := m.Cols/2, m.Cols/32
	lut := (*byte)(unsafe.Pointer(&e2m1Doubled[0]))
	for r := lo; r < hi; r++ {
		w, sc := q.W[r*rowBytes:(r+1)*rowBytes], q.Scales[r*groups:(r+1)*groups]
		for t := 0; t < n; t++ {
			xt := x[t*m.Cols : (t+1)*m.Cols]
			out[t*m.Rows+r] = mxdot4NEON(&w[0], &xt[0], &sc[0], &e8m0Halves[0], lut, groups)
		}
	}
	return true
}
