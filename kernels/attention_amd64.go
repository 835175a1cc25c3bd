//go:build !purego

package kernels

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
