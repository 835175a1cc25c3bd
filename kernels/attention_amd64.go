//go:build !purego

package kernels

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
	accumPVAVX2(&o[0], ldo, rows, &p[0], ldp, &v[0], ldv, keys, n8)
	if n8 < n {
		accumPVGo(o[n8:], ldo, rows, p, ldp, v[n8:], ldv, keys, n-n8)
	}
}
