//go:build !purego

package kernels

//go:noescape
func mxdot4AVX2(w *byte, x *float32, scales *byte, table *float32, groups int) float32

// mxRowsSIMD computes rows [lo, hi) of an MXFP4 matrix with mxdot4AVX2; it
// reports false for other modes or without AVX2.
func mxRowsSIMD(out, x []float32, n int, m *Matrix, lo, hi int) bool {
	q := m.MX
	if !hasAVX2FMA || q.Mode != MXFP4 {
		return false
	}
	rowBytes, groups := m.Cols/2, m.Cols/32
	for r := lo; r < hi; r++ {
		w, sc := q.W[r*rowBytes:(r+1)*rowBytes], q.Scales[r*groups:(r+1)*groups]
		for t := 0; t < n; t++ {
			xt := x[t*m.Cols : (t+1)*m.Cols]
			out[t*m.Rows+r] = mxdot4AVX2(&w[0], &xt[0], &sc[0], &e8m0Halves[0], groups)
		}
	}
	return true
}
