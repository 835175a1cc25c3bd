package mslharness

import (
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels"
)

// TestConv1d runs decode steps (n = 1, against Conv1dStep) and then a
// prefill of several tokens (against Conv1dPrefill) on the same state.
func TestConv1d(t *testing.T) {
	t.Parallel()
	p := program(t, "delta.metal")
	r := newRand(10)
	for _, c := range []struct{ channels, kernel int }{{300, 4}, {8192, 4}, {5, 1}, {33, 2}} {
		hist := c.kernel - 1
		state, w := randn(r, c.channels*hist, 1), randn(r, c.channels*c.kernel, 0.5)
		wantState := append([]float32(nil), state...)
		sb := f32Bytes(state)
		for step, n := range []int{1, 1, 1, 5, 2} {
			x := randn(r, n*c.channels, 1)
			want := make([]float32, n*c.channels)
			if n == 1 {
				kernels.Conv1dStep(wantState, x, w, want, c.channels, c.kernel)
			} else {
				kernels.Conv1dPrefill(wantState, x, w, want, n, c.channels, c.kernel)
			}
			out := launch(t, p, "conv1d", Launch{Groups: [3]int{(c.channels + 255) / 256, 1, 1}, Threads: [3]int{256, 1, 1}, Seed: uint64(step + 1),
				Buffers: map[int][]byte{0: sb, 1: f32Bytes(x), 2: f32Bytes(w), 3: f32Bytes(make([]float32, len(want))),
					4: u32Bytes([]uint32{uint32(c.channels), uint32(c.kernel), uint32(n)})}})
			compare(t, "conv1d", bytesF32(out[3]), want, 1e-6, 1e-6)
			sb = out[0]
		}
		compare(t, "conv1d", bytesF32(sb), wantState, 0, 0)
	}
}

func TestGatedDeltaGates(t *testing.T) {
	t.Parallel()
	p := program(t, "delta.metal")
	r := newRand(11)
	n, hv := 3, 32
	a, b := randn(r, n*hv, 3), randn(r, n*hv, 2)
	a[0] = 25 // softplus's linear branch
	aLog, dtBias := randn(r, hv, 1), randn(r, hv, 1)
	g, beta := make([]float32, n*hv), make([]float32, n*hv)
	kernels.GatedDeltaGates(g, beta, a, b, aLog, dtBias, n, hv)
	zeros := f32Bytes(make([]float32, n*hv))
	out := launch(t, p, "gated_delta_gates", Launch{Groups: [3]int{1, 1, 1}, Threads: [3]int{256, 1, 1},
		Buffers: map[int][]byte{0: f32Bytes(a), 1: f32Bytes(b), 2: f32Bytes(aLog), 3: f32Bytes(dtBias), 4: zeros, 5: zeros,
			6: u32Bytes([]uint32{uint32(hv), uint32(n * hv)})}})
	compare(t, "gated_delta_gates", bytesF32(out[4]), g, 1e-6, 1e-6)
	compare(t, "gated_delta_gates", bytesF32(out[5]), beta, 1e-7, 1e-6)
}

// TestGatedDelta runs decode steps (n = 1, against GatedDeltaStep) and a
// prefill of several tokens (against GatedDeltaChunked, whose chunked form
// must agree with the token-by-token recurrence) on the same state.
func TestGatedDelta(t *testing.T) {
	t.Parallel()
	p := program(t, "delta.metal")
	r := newRand(12)
	for _, c := range []struct{ hk, hv, dk, dv int }{{2, 4, 128, 128}, {1, 3, 48, 200}, {2, 2, 256, 64}} {
		state := randn(r, c.hv*c.dk*c.dv, 0.3)
		wantState := append([]float32(nil), state...)
		sb := f32Bytes(state)
		for step, n := range []int{1, 1, 7} {
			q, k, v := randn(r, n*c.hk*c.dk, 1), randn(r, n*c.hk*c.dk, 1), randn(r, n*c.hv*c.dv, 1)
			g, beta := randn(r, n*c.hv, 0.3), make([]float32, n*c.hv)
			for i := range g {
				g[i] = -g[i] * g[i]
				beta[i] = kernels.Sigmoid(float32(r.NormFloat64()))
			}
			want := make([]float32, n*c.hv*c.dv)
			if n == 1 {
				kernels.GatedDeltaStep(wantState, q, k, v, g, beta, want, c.hk, c.hv, c.dk, c.dv)
			} else {
				kernels.GatedDeltaChunked(wantState, q, k, v, g, beta, want, n, c.hk, c.hv, c.dk, c.dv, 4)
			}
			out := launch(t, p, "gated_delta", Launch{Groups: [3]int{c.hv, 1, 1}, Threads: [3]int{128, 1, 1}, Seed: uint64(step + 7),
				Buffers: map[int][]byte{0: sb, 1: f32Bytes(q), 2: f32Bytes(k), 3: f32Bytes(v), 4: f32Bytes(g), 5: f32Bytes(beta),
					6: f32Bytes(make([]float32, len(want))), 7: u32Bytes([]uint32{uint32(c.hk), uint32(c.hv), uint32(c.dk), uint32(c.dv), uint32(n)})}})
			compare(t, "gated_delta", bytesF32(out[6]), want, 1e-6, 1e-5)
			sb = out[0]
		}
		compare(t, "gated_delta", bytesF32(sb), wantState, 1e-6, 1e-5)
	}
}

// TestGatedDeltaChunked runs prefills of several lengths (within one chunk,
// exactly one, across chunk boundaries) through gated_delta_chunked and
// checks outputs and state against kernels.GatedDeltaChunked and against the
// token-by-token gated_delta shader from the same starting state.
func TestGatedDeltaChunked(t *testing.T) {
	t.Parallel()
	p := program(t, "delta.metal")
	r := newRand(13)
	for _, c := range []struct{ hk, hv, dk, dv int }{{2, 4, 128, 128}, {1, 3, 48, 200}, {2, 2, 256, 64}, {2, 6, 64, 32}} {
		for _, n := range []int{1, 7, 8, 16, 33, 70} {
			state := randn(r, c.hv*c.dk*c.dv, 0.3)
			q, k, v := randn(r, n*c.hk*c.dk, 1), randn(r, n*c.hk*c.dk, 1), randn(r, n*c.hv*c.dv, 1)
			g, beta := randn(r, n*c.hv, 0.3), make([]float32, n*c.hv)
			for i := range g {
				g[i] = -g[i] * g[i]
				beta[i] = kernels.Sigmoid(float32(r.NormFloat64()))
			}
			want, wantState := make([]float32, n*c.hv*c.dv), append([]float32(nil), state...)
			kernels.GatedDeltaChunked(wantState, q, k, v, g, beta, want, n, c.hk, c.hv, c.dk, c.dv, 0)
			run := func(kernel string) (out, st []float32) {
				o := launch(t, p, kernel, Launch{Groups: [3]int{c.hv, 1, 1}, Threads: [3]int{128, 1, 1}, Seed: uint64(n),
					Buffers: map[int][]byte{0: f32Bytes(state), 1: f32Bytes(q), 2: f32Bytes(k), 3: f32Bytes(v), 4: f32Bytes(g), 5: f32Bytes(beta),
						6: f32Bytes(make([]float32, len(want))), 7: u32Bytes([]uint32{uint32(c.hk), uint32(c.hv), uint32(c.dk), uint32(c.dv), uint32(n)})}})
				return bytesF32(o[6]), bytesF32(o[0])
			}
			got, gotState := run("gated_delta_chunked")
			compare(t, "gated_delta_chunked", got, want, 1e-5, 1e-5)
			compare(t, "gated_delta_chunked", gotState, wantState, 1e-5, 1e-5)
			seq, seqState := run("gated_delta")
			compare(t, "gated_delta_chunked vs gated_delta", got, seq, 1e-5, 1e-5)
			compare(t, "gated_delta_chunked vs gated_delta", gotState, seqState, 1e-5, 1e-5)
		}
	}
}
