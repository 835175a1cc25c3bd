//go:build !purego

package kernels

//go:noescape
func attnScoresF16x2NEON(s *float32, q *float32, dk int, k *uint16, ks, nk int)

//go:noescape
func attnScoresF16x4NEON(s *float32, q *float32, dk int, k *uint16, ks, nk, ps int)

//go:noescape
func attnPVF16x2NEON(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk int)

//go:noescape
func attnPVF16x4NEON(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)

// hasFusedF16 reports whether the fused f16 attention kernels run here
// (their softmax is the portable one on arm64).
func hasFusedF16() bool { return hasNEON }

// attnF16 are the fused f16 kernels (attnScoresF16, attnPVF16).
var attnF16 = f16Kernels{
	scores2: attnScoresF16x2NEON, scores4: attnScoresF16x4NEON,
	pv2: attnPVF16x2NEON, pv4: attnPVF16x4NEON,
}

// attnSoftmax is one key block's online softmax for r rows (the portable
// form: arm64 has no vector e^x here yet).
func attnSoftmax(s []float32, nk, r int, m, l, corr []float32) {
	attnSoftmaxGo(s, nk, r, m, l, corr)
}
