//go:build !purego

package kernels

// mamba2RowAVX2 is mamba2Row over n values, n a multiple of 8.
//
//go:noescape
func mamba2RowAVX2(s, b, c *float32, n int, decay, dx float32) float32

// mamba2Row updates one Mamba-2 state row, s = decay·s + dx·b, and returns
// Σ s·c over the new values, in one pass (the scan's hot loop).
func mamba2Row(s, b, c []float32, decay, dx float32) float32 {
	n := len(s)
	b, c = b[:n], c[:n]
	if !hasAVX2FMA || n < 8 {
		return mamba2RowGo(s, b, c, decay, dx)
	}
	n8 := n &^ 7
	acc := mamba2RowAVX2(&s[0], &b[0], &c[0], n8, decay, dx)
	if n8 < n {
		acc += mamba2RowGo(s[n8:], b[n8:], c[n8:], decay, dx)
	}
	return acc
}
