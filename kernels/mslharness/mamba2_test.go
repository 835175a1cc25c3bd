package mslharness

import (
	"math"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestConv1dBias runs decode steps and prefills on one state against
// kernels.Conv1dBiasPrefill.
func TestConv1dBias(t *testing.T) {
	t.Parallel()
	p := program(t, "mamba2.metal")
	r := newRand(40)
	for _, c := range []struct{ channels, kernel int }{{300, 4}, {5, 1}, {33, 2}} {
		hist := c.kernel - 1
		state, w, bias := randn(r, c.channels*hist, 1), randn(r, c.channels*c.kernel, 0.5), randn(r, c.channels, 0.5)
		wantState := append([]float32(nil), state...)
		sb := f32Bytes(state)
		for step, n := range []int{1, 1, 5, 2} {
			x := randn(r, n*c.channels, 1)
			want := make([]float32, n*c.channels)
			kernels.Conv1dBiasPrefill(wantState, x, w, bias, want, n, c.channels, c.kernel)
			out := launch(t, p, "conv1d_bias", Launch{Groups: [3]int{(c.channels + 255) / 256, 1, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(step + 1),
				Buffers: map[int][]byte{0: sb, 1: f32Bytes(x), 2: f32Bytes(w), 3: f32Bytes(bias), 4: f32Bytes(make([]float32, len(want))),
					5: u32Bytes([]uint32{uint32(c.channels), uint32(c.kernel), uint32(n)})}})
			compare(t, "conv1d_bias", bytesF32(out[4]), want, 1e-6, 1e-6)
			sb = out[0]
		}
		compare(t, "conv1d_bias", bytesF32(sb), wantState, 0, 0)
	}
}

// scanParams is mamba2.metal's ScanParams.
type scanParams struct {
	Heads, HeadDim, Groups, StateDim, N, XStride, DtStride, BCStride, YStride uint32
	DtMin, DtMax                                                              float32
}

// TestMamba2Scan runs decode steps and a prefill on one state against
// kernels.Mamba2Step, with x, B and C read as column views of one conv
// output row (their row stride wider than their width).
func TestMamba2Scan(t *testing.T) {
	t.Parallel()
	p := program(t, "mamba2.metal")
	r := newRand(41)
	for _, c := range []struct {
		heads, headDim, groups, stateDim, threads int
		dtMin, dtMax                              float32
	}{{4, 16, 2, 16, 32, 0, 0}, {8, 64, 1, 128, 64, 0, 0}, {6, 40, 3, 8, 32, 0, 0}, {2, 16, 1, 16, 32, 0.3, 0.9}} { // the last clamps
		mp := &kernels.Mamba2Params{Heads: c.heads, HeadDim: c.headDim, Groups: c.groups, StateDim: c.stateDim,
			A: randn(r, c.heads, 1), D: randn(r, c.heads, 1), DtBias: randn(r, c.heads, 1), DtMin: c.dtMin, DtMax: c.dtMax}
		for i, v := range mp.A {
			mp.A[i] = -float32(math.Exp(float64(v)))
		}
		hp, gn := c.heads*c.headDim, c.groups*c.stateDim
		width := hp + 2*gn // a conv output row: x, then B, then C
		state := randn(r, mp.StateSize(), 0.3)
		wantState := append([]float32(nil), state...)
		sb := f32Bytes(state)
		for step, n := range []int{1, 1, 7} {
			conv, dt := randn(r, n*width, 1), randn(r, n*c.heads, 2)
			dt[0] = 25 // softplus's linear branch
			want := make([]float32, n*hp)
			for i := range n {
				row := conv[i*width:]
				kernels.Mamba2Step(wantState, row[:hp], dt[i*c.heads:], row[hp:hp+gn], row[hp+gn:width], want[i*hp:], mp)
			}
			convB := f32Bytes(conv)
			out := launch(t, p, "mamba2_scan", Launch{Groups: [3]int{c.heads, 1, 1}, Threads: [3]int{c.threads, 1, 1}, Seed: uint64(step + 3),
				Buffers: map[int][]byte{0: sb, 1: convB, 2: f32Bytes(dt), 3: convB[4*hp:], 4: convB[4*(hp+gn):],
					5: f32Bytes(make([]float32, n*hp)), 6: f32Bytes(mp.A), 7: f32Bytes(mp.D), 8: f32Bytes(mp.DtBias),
					9: params(scanParams{uint32(c.heads), uint32(c.headDim), uint32(c.groups), uint32(c.stateDim), uint32(n),
						uint32(width), uint32(c.heads), uint32(width), uint32(hp), c.dtMin, c.dtMax})}})
			compare(t, "mamba2_scan", bytesF32(out[5]), want, 1e-5, 1e-5)
			sb = out[0]
		}
		compare(t, "mamba2_scan", bytesF32(sb), wantState, 1e-5, 1e-5)
	}
}

// gateNormParams is mamba2.metal's GateNormParams.
type gateNormParams struct {
	Dim   uint32
	Eps   float32
	Width uint32
}

func TestRMSNormGate(t *testing.T) {
	t.Parallel()
	p := program(t, "mamba2.metal")
	r := newRand(42)
	const eps = 1e-5
	for _, c := range []struct{ rows, width, dim, threads int }{{3, 128, 128, 64}, {2, 96, 32, 32}, {1, 1000, 250, 256}} {
		x, z, w := randn(r, c.rows*c.width, 2), randn(r, c.rows*c.width, 2), randn(r, c.width, 1)
		want := make([]float32, c.rows*c.width)
		kernels.RMSNormGate(want, x, z, w, c.rows, c.width, c.dim, eps)
		out := launch(t, p, "rmsnorm_gate", Launch{Groups: [3]int{c.rows * c.width / c.dim, 1, 1}, Threads: [3]int{c.threads, 1, 1}, Seed: uint64(c.dim),
			Buffers: map[int][]byte{0: f32Bytes(x), 1: f32Bytes(z), 2: f32Bytes(w), 3: f32Bytes(make([]float32, len(want))),
				4: params(gateNormParams{uint32(c.dim), eps, uint32(c.width)})}})
		compare(t, "rmsnorm_gate", bytesF32(out[3]), want, 1e-6, 2e-6)
	}
}

// scaleParams is mamba2.metal's ScaleParams.
type scaleParams struct {
	Count uint32
	S     float32
}

func TestScaleRows(t *testing.T) {
	t.Parallel()
	p := program(t, "mamba2.metal")
	r := newRand(43)
	for _, n := range []int{1, 255, 1000} {
		x := randn(r, n, 2)
		want := make([]float32, n)
		kernels.ScaleVec(want, x, 0.22)
		out := launch(t, p, "scale_rows", oneD(n, map[int][]byte{0: f32Bytes(x), 1: f32Bytes(make([]float32, n)), 2: params(scaleParams{uint32(n), 0.22})}))
		compare(t, "scale_rows", bytesF32(out[1]), want, 0, 0)
	}
}
