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

// attnScoresF16 writes s[j*r+i] = q_i·k_j for rows i < r (2, 4 or 8; q
// row i at q[i*dk:], dk a multiple of 8) and keys j < nk (key j the dk
// halves at k[j*ks:]). s must hold nk rounded up to 2 keys times r
// values: an odd last key is repeated.
func attnScoresF16(r int, s, q []float32, dk int, k []uint16, ks, nk int) {
	if !hasNEON || dk%8 != 0 || nk == 0 || (r != 2 && r != 4 && r != 8) {
		attnScoresF16Go(r, s, q, dk, k, ks, nk)
		return
	}
	// The assembly does no bounds checks.
	_ = s[(nk+1)&^1*r-1]
	_ = q[r*dk-1]
	_ = k[(nk-1)*ks+dk-1]
	switch r {
	case 2:
		attnScoresF16x2NEON(&s[0], &q[0], dk, &k[0], ks, nk)
	case 4:
		attnScoresF16x4NEON(&s[0], &q[0], dk, &k[0], ks, nk, 4)
	case 8:
		attnScoresF16x4NEON(&s[0], &q[0], dk, &k[0], ks, nk, 8)
		attnScoresF16x4NEON(&s[4], &q[4*dk], dk, &k[0], ks, nk, 8)
	}
}

// attnSoftmax is one key block's online softmax for r rows (the portable
// form: arm64 has no vector e^x here yet).
func attnSoftmax(s []float32, nk, r int, m, l, corr []float32) {
	attnSoftmaxGo(s, nk, r, m, l, corr)
}

// attnPVF16 sets o[i*dv+c] = o[i*dv+c]·corr[i] + Σ_j p[j*r+i]·v_j[c] for
// rows i < r (2, 4 or 8; dv a multiple of 8), keys j < nk (value j the dv
// halves at v[j*vs:]).
func attnPVF16(r int, o []float32, dv int, corr, p []float32, v []uint16, vs, nk int) {
	if !hasNEON || dv%8 != 0 || nk == 0 || (r != 2 && r != 4 && r != 8) {
		attnPVF16Go(r, o, dv, corr, p, v, vs, nk)
		return
	}
	_ = o[r*dv-1]
	_ = corr[r-1]
	_ = p[nk*r-1]
	_ = v[(nk-1)*vs+dv-1]
	switch r {
	case 2:
		attnPVF16x2NEON(&o[0], dv, &corr[0], &p[0], &v[0], vs, nk)
	case 4:
		attnPVF16x4NEON(&o[0], dv, &corr[0], &p[0], &v[0], vs, nk, 4)
	case 8:
		attnPVF16x4NEON(&o[0], dv, &corr[0], &p[0], &v[0], vs, nk, 8)
		attnPVF16x4NEON(&o[4*dv], dv, &corr[4], &p[4], &v[0], vs, nk, 8)
	}
}
