package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveCausalConv is transformers' prefill path for a whole sequence: a
// depthwise conv1d with kernel-1 zeros of left padding, cut to the sequence
// length, then SiLU. x and the result are [t, channels].
func naiveCausalConv(x, w []float32, t, channels, kernel int) []float64 {
	out := make([]float64, t*channels)
	for c := range channels {
		padded := make([]float64, kernel-1, kernel-1+t)
		for i := range t {
			padded = append(padded, float64(x[i*channels+c]))
		}
		for i := range t {
			var acc float64
			for j := range kernel {
				acc += float64(w[c*kernel+j]) * padded[i+j]
			}
			out[i*channels+c] = acc / (1 + math.Exp(-acc))
		}
	}
	return out
}

func TestConv1dMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, tc := range []struct{ channels, kernel, t int }{
		{5, 4, 11}, {3, 1, 4}, {2, 2, 3}, {7, 6, 2}, {320, 4, 33},
	} {
		x := deltaRandn(rng, tc.t*tc.channels, 1)
		w := deltaRandn(rng, tc.channels*tc.kernel, 1)
		want := naiveCausalConv(x, w, tc.t, tc.channels, tc.kernel)
		hist := tc.kernel - 1

		// Whole sequence in one prefill from a zero state.
		state := make([]float32, tc.channels*hist)
		out := make([]float32, tc.t*tc.channels)
		Conv1dPrefill(state, x, w, out, tc.t, tc.channels, tc.kernel)
		if d := deltaMaxDiff(out, want); d > 1e-5 {
			t.Errorf("%+v: prefill differs from the padded conv by %g", tc, d)
		}
		for c := range tc.channels {
			for s := range hist {
				var wantState float32
				if p := tc.t - hist + s; p >= 0 {
					wantState = x[p*tc.channels+c]
				}
				if got := state[c*hist+s]; got != wantState {
					t.Errorf("%+v: state[%d,%d] = %g, want input %d (%g)", tc, c, s, got, tc.t-hist+s, wantState)
				}
			}
		}

		// Token by token.
		clear(state)
		stepOut := make([]float32, tc.t*tc.channels)
		for i := range tc.t {
			row := x[i*tc.channels : (i+1)*tc.channels]
			Conv1dStep(state, row, w, stepOut[i*tc.channels:(i+1)*tc.channels], tc.channels, tc.kernel)
		}
		if d := deltaMaxDiff(stepOut, want); d > 1e-5 {
			t.Errorf("%+v: steps differ from the padded conv by %g", tc, d)
		}

		// Pieces shorter and longer than the history, continuing from the state.
		clear(state)
		pieceOut := make([]float32, tc.t*tc.channels)
		for start, n := 0, 1; start < tc.t; start, n = start+n, n+1 {
			n = min(n, tc.t-start)
			Conv1dPrefill(state, x[start*tc.channels:], w, pieceOut[start*tc.channels:], n, tc.channels, tc.kernel)
		}
		if d := deltaMaxDiff(pieceOut, want); d > 1e-5 {
			t.Errorf("%+v: prefill in pieces differs from the padded conv by %g", tc, d)
		}
	}
}

// The depthwise conv of Qwen3-Next runs over the q|k|v channels; with
// channel-major state and weights the caller can convolve q, k and v as
// separate planes by slicing both by channel range.
func TestConv1dChannelRangesMatchWholeConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const steps, kernel = 5, 4
	parts := []int{6, 6, 10} // channels of q, k, v
	channels := 22
	x := deltaRandn(rng, steps*channels, 1)
	w := deltaRandn(rng, channels*kernel, 1)
	state := deltaRandn(rng, channels*(kernel-1), 1)
	whole := make([]float32, steps*channels)
	wholeState := append([]float32(nil), state...)
	Conv1dPrefill(wholeState, x, w, whole, steps, channels, kernel)

	c0 := 0
	for _, n := range parts {
		plane := make([]float32, steps*n)
		for i := range steps {
			copy(plane[i*n:(i+1)*n], x[i*channels+c0:i*channels+c0+n])
		}
		out := make([]float32, steps*n)
		Conv1dPrefill(state[c0*(kernel-1):(c0+n)*(kernel-1)], plane, w[c0*kernel:(c0+n)*kernel], out, steps, n, kernel)
		for i := range steps {
			for c := range n {
				if out[i*n+c] != whole[i*channels+c0+c] {
					t.Fatalf("channels [%d,%d): token %d channel %d = %g, whole conv gives %g", c0, c0+n, i, c, out[i*n+c], whole[i*channels+c0+c])
				}
			}
		}
		c0 += n
	}
	if d := deltaMaxDiff(state, wholeState); d != 0 {
		t.Errorf("state by channel ranges differs from the whole conv's by %g", d)
	}
}

func TestConv1dRejectsBadShapes(t *testing.T) {
	x := make([]float32, 16)
	msg := deltaPanicMessage(func() { Conv1dPrefill(x[:2], x, x, x, 2, 2, 4) })
	if msg == "" || msg[:len("kernels.Conv1d")] != "kernels.Conv1d" {
		t.Errorf("short state: panic %q does not name the kernel", msg)
	}
}
