//go:build purego || !amd64

package kernels

// accumPV adds o[i*ldo+c] += Σ_j p[i*ldp+j]·v[j*ldv+c] for i < rows,
// j < keys, c < n: the value half of an attention block.
func accumPV(o []float32, ldo, rows int, p []float32, ldp int, v []float32, ldv, keys, n int) {
	accumPVGo(o, ldo, rows, p, ldp, v, ldv, keys, n)
}

// expShift replaces x[i] by e^(x[i]-m) and returns their sum.
func expShift(x []float32, m float32) float32 { return expShiftGo(x, m) }
