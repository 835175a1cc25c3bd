package mslharness

import (
	"math"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestMamba1Conv runs decode steps and prefills of several tokens through
// mamba1_conv on one state, with and without bias, against
// kernels.Mamba1Conv.
func TestMamba1Conv(t *testing.T) {
	t.Parallel()
	p := program(t, "mamba1.metal")
	r := newRand(31)
	for _, c := range []struct {
		channels, kernel int
		bias             bool
	}{{300, 4, true}, {8192, 4, true}, {5, 1, true}, {33, 2, false}} {
		hist := c.kernel - 1
		state, w := randn(r, c.channels*hist, 1), randn(r, c.channels*c.kernel, 0.5)
		bias := make([]float32, c.channels) // the executor binds zeros for no bias
		if c.bias {
			bias = randn(r, c.channels, 0.5)
		}
		wantState := append([]float32(nil), state...)
		sb := f32Bytes(state)
		for step, n := range []int{1, 1, 5, 1, 2} {
			x := randn(r, n*c.channels, 1)
			want := make([]float32, n*c.channels)
			kernels.Mamba1Conv(wantState, x, w, bias, want, n, c.channels, c.kernel)
			out := launch(t, p, "mamba1_conv", Launch{Groups: [3]int{(c.channels + 255) / 256, 1, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(step + 1),
				Buffers: map[int][]byte{0: sb, 1: f32Bytes(x), 2: f32Bytes(w), 3: f32Bytes(bias), 4: f32Bytes(make([]float32, len(want))),
					5: u32Bytes([]uint32{uint32(c.channels), uint32(c.kernel), uint32(n)})}})
			compare(t, "mamba1_conv", bytesF32(out[4]), want, 1e-6, 1e-6)
			sb = out[0]
		}
		compare(t, "mamba1_conv", bytesF32(sb), wantState, 0, 0)
	}
}

// TestMamba1Scan runs decode steps and prefills through mamba1_scan on one
// state, with B and C as column views of one wider projection (as the
// model binds them), against kernels.Mamba1Scan.
func TestMamba1Scan(t *testing.T) {
	t.Parallel()
	p := program(t, "mamba1.metal")
	r := newRand(32)
	for _, c := range []struct{ channels, dstate, lead int }{{300, 16, 4}, {8192, 16, 256}, {7, 3, 0}, {64, 64, 8}} {
		ld := c.lead + 2*c.dstate // row stride of the projection [dt_low | B | C]
		state := randn(r, c.channels*c.dstate, 0.5)
		a := make([]float32, c.channels*c.dstate)
		for i := range a {
			a[i] = -float32(math.Exp(r.NormFloat64()))
		}
		d, dtBias := randn(r, c.channels, 1), randn(r, c.channels, 1)
		wantState := append([]float32(nil), state...)
		sb := f32Bytes(state)
		for step, n := range []int{1, 1, 6, 1, 3} {
			x, z := randn(r, n*c.channels, 1), randn(r, n*c.channels, 1)
			dt := randn(r, n*c.channels, 1)
			dt[0] = 30 // above softplus's threshold
			proj := randn(r, n*ld, 1)
			b, cm := make([]float32, n*c.dstate), make([]float32, n*c.dstate)
			for i := range n {
				copy(b[i*c.dstate:], proj[i*ld+c.lead:])
				copy(cm[i*c.dstate:], proj[i*ld+c.lead+c.dstate:(i+1)*ld])
			}
			want := make([]float32, n*c.channels)
			kernels.Mamba1Scan(wantState, x, dt, dtBias, b, cm, z, a, d, want, n, c.channels, c.dstate)
			// B and C are bound where they start inside the projection,
			// with exactly the bytes their views span.
			span := (n-1)*ld + c.dstate
			bBytes := f32Bytes(proj[c.lead : c.lead+span])
			cBytes := f32Bytes(proj[c.lead+c.dstate : c.lead+c.dstate+span])
			out := launch(t, p, "mamba1_scan", Launch{Groups: [3]int{(c.channels + 255) / 256, 1, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(step + 3),
				Buffers: map[int][]byte{0: sb, 1: f32Bytes(x), 2: f32Bytes(dt), 3: bBytes, 4: cBytes, 5: f32Bytes(z),
					6: f32Bytes(a), 7: f32Bytes(d), 8: f32Bytes(make([]float32, len(want))),
					9: u32Bytes([]uint32{uint32(c.channels), uint32(c.dstate), uint32(n), uint32(ld)}), 10: f32Bytes(dtBias)}})
			compare(t, "mamba1_scan", bytesF32(out[8]), want, 1e-5, 1e-5)
			sb = out[0]
		}
		compare(t, "mamba1_scan", bytesF32(sb), wantState, 1e-5, 1e-5)
	}
}
