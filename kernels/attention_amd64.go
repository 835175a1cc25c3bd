//go:build !purego

package kernels

import "math/bits"

//go:noescape
func expShiftAVX2(x *float32, n int, m float32) float32

//go:noescape
func accumPV4AVX2(o *float32, ldo, rows int, p *float32, ldp int, v *float32, ldv, keys, n int)

//go:noescape
func accumPVAVX2(o *float32, ldo, rows int, p *float32, ldp int, v *float32, ldv, keys, n int)

// accumPV adds o[i*ldo+c] += Σ_j p[i*ldp+j]·v[j*ldv+c] for i < rows,
// j < keys, c < n: the value half of an attention block.
func accumPV(o []float32, ldo, rows int, p []float32, ldp int, v []float32, ldv, keys, n int) {
	n8 := n &^ 7
	if !hasAVX2FMA || n8 == 0 || rows == 0 || keys == 0 {
		accumPVGo(o, ldo, rows, p, ldp, v, ldv, keys, n)
		return
	}
	// The assembly does no bounds checks.
	_ = o[(rows-1)*ldo+n-1]
	_ = p[(rows-1)*ldp+keys-1]
	_ = v[(keys-1)*ldv+n-1]
	// Quads of rows over 16-column chunks, then single rows for the rest.
	rows4, n16 := rows&^3, n&^15
	if rows4 > 0 && n16 > 0 {
		accumPV4AVX2(&o[0], ldo, rows4, &p[0], ldp, &v[0], ldv, keys, n16)
		if n16 < n8 {
			accumPVAVX2(&o[n16], ldo, rows4, &p[0], ldp, &v[n16], ldv, keys, n8-n16)
		}
	} else {
		rows4 = 0
	}
	if rows4 < rows {
		accumPVAVX2(&o[rows4*ldo], ldo, rows-rows4, &p[rows4*ldp], ldp, &v[0], ldv, keys, n8)
	}
	if n8 < n {
		accumPVGo(o[n8:], ldo, rows, p, ldp, v[n8:], ldv, keys, n-n8)
	}
}

// expShift replaces x[i] by e^(x[i]-m) and returns their sum.
func expShift(x []float32, m float32) float32 {
	n8 := len(x) &^ 7
	if !hasAVX2FMA || n8 == 0 {
		return expShiftGo(x, m)
	}
	return expShiftAVX2(&x[0], n8, m) + expShiftGo(x[n8:], m)
}

//go:noescape
func attnScoresF16x2AVX2(s *float32, q *float32, dk int, k *uint16, ks, nk int)

//go:noescape
func attnScoresF16x4AVX2(s *float32, q *float32, dk int, k *uint16, ks, nk, ps int)

//go:noescape
func attnScoresF16x8AVX2(s *float32, q *float32, dk int, k *uint16, ks, nk int)

//go:noescape
func attnSoftmaxAVX2(s *float32, n, r int, rows *int32, m, l, corr *float32)

//go:noescape
func attnPVF16x2AVX2(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk int)

//go:noescape
func attnPVF16x4AVX2(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)

//go:noescape
func attnPVF16x4x3AVX2(o *float32, dv int, corr *float32, p *float32, v *uint16, vs, nk, ps int)

// hasFusedF16 reports whether the fused f16 attention kernels run here.
func hasFusedF16() bool { return hasAVX2FMA && hasF16C }

// attnF16 are the fused f16 kernels (attnScoresF16, attnPVF16).
var attnF16 = f16Kernels{
	scores2: attnScoresF16x2AVX2, scores4: attnScoresF16x4AVX2, scores8: attnScoresF16x8AVX2,
	pv2: attnPVF16x2AVX2, pv4: attnPVF16x4AVX2, pv4x3: attnPVF16x4x3AVX2,
}

// attnSoftmax is one key block's online softmax for r rows (1, 2, 4 or
// 8) over the scores s[j*r+i], j < nk: m[i] becomes the max of m[i] and
// the row's scores, each score e^(score - m[i]), corr[i] the rescale
// e^(old m[i] - m[i]) of what the row accumulated, l[i] = l[i]·corr[i] +
// the row's exponentials. m, l and corr hold at least 8 values and s at
// least nk·r rounded up to 8 (the assembly writes past r and nk·r).
func attnSoftmax(s []float32, nk, r int, m, l, corr []float32) {
	if !hasFusedF16() || nk == 0 || 8%r != 0 {
		attnSoftmaxGo(s, nk, r, m, l, corr)
		return
	}
	_ = s[(nk*r+7)&^7-1]
	_, _, _ = m[7], l[7], corr[7]
	attnSoftmaxAVX2(&s[0], nk*r, r, &attnLanes[bits.TrailingZeros(uint(r))][0], &m[0], &l[0], &corr[0])
}
