//go:build purego || !(amd64 || arm64)

package kernels

// hasFusedF16 reports whether the fused f16 attention kernels run here:
// without SIMD the float32 tile is the faster path.
func hasFusedF16() bool { return false }

// attnScoresF16 writes s[j*r+i] = q_i·k_j for rows i < r and keys j < nk.
func attnScoresF16(r int, s, q []float32, dk int, k []uint16, ks, nk int) {
	attnScoresF16Go(r, s, q, dk, k, ks, nk)
}

// attnSoftmax is one key block's online softmax for r rows.
func attnSoftmax(s []float32, nk, r int, m, l, corr []float32) {
	attnSoftmaxGo(s, nk, r, m, l, corr)
}

// attnPVF16 adds the weighted values of nk keys to r rescaled output rows.
func attnPVF16(r int, o []float32, dv int, corr, p []float32, v []uint16, vs, nk int) {
	attnPVF16Go(r, o, dv, corr, p, v, vs, nk)
}
