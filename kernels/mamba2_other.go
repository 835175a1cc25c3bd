//go:build purego || !amd64

package kernels

// mamba2Row updates one Mamba-2 state row, s = decay·s + dx·b, and returns
// Σ s·c over the new values.
func mamba2Row(s, b, c []float32, decay, dx float32) float32 { return mamba2RowGo(s, b, c, decay, dx) }
