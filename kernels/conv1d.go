package kernels

import "fmt"

// Conv1dStep is Conv1dPrefill for one token: the causal depthwise convolution
// of Qwen3-Next's linear-attention block followed by SiLU.
//
//	state [channels, kernel-1]  the previous kernel-1 inputs of each channel, oldest first; updated
//	x     [channels]
//	w     [channels, kernel]    tap kernel-1 multiplies the newest input
//	out   [channels]
func Conv1dStep(state, x, w, out []float32, channels, kernel int) {
	Conv1dPrefill(state, x, w, out, 1, channels, kernel)
}

// Conv1dPrefill runs t tokens through the causal depthwise convolution and
// SiLU, continuing from state and leaving in it the last kernel-1 inputs of
// each channel (older state entries shift in when t < kernel-1). A fresh
// sequence starts from a zero state, which is transformers' left zero padding.
//
//	out[i,c] = silu(Σ_j w[c,j] · x[i-(kernel-1)+j, c])   (negative times read state)
//
// x and out are [t, channels] and must not overlap. Both HF ([C, 1, K]) and
// MLX ([C, K, 1]) conv1d weights are w as stored. There is no bias: Qwen3-Next
// has none.
func Conv1dPrefill(state, x, w, out []float32, t, channels, kernel int) {
	hist := kernel - 1
	if t < 0 || channels <= 0 || kernel <= 0 {
		panic(fmt.Sprintf("kernels.Conv1dPrefill: bad shape t=%d channels=%d kernel=%d", t, channels, kernel))
	}
	if len(state) < channels*hist || len(x) < t*channels || len(w) < channels*kernel || len(out) < t*channels {
		panic(fmt.Sprintf("kernels.Conv1dPrefill: t=%d channels=%d kernel=%d needs state %d, x/out %d, w %d; got state %d, x %d, w %d, out %d",
			t, channels, kernel, channels*hist, t*channels, channels*kernel, len(state), len(x), len(w), len(out)))
	}
	for i := range t {
		oi := out[i*channels : (i+1)*channels]
		for c := range oi {
			var acc float32
			for j, wj := range w[c*kernel : (c+1)*kernel] {
				if p := i - hist + j; p < 0 {
					acc += wj * state[c*hist+hist+p]
				} else {
					acc += wj * x[p*channels+c]
				}
			}
			oi[c] = acc
		}
		SiluVec(oi, oi)
	}
	for c := range channels {
		sc := state[c*hist : (c+1)*hist]
		// Entry s now holds time t-hist+s; a time before the first new token is
		// old entry s+t, which ascending s has not yet overwritten.
		for s := range sc {
			if p := t - hist + s; p < 0 {
				sc[s] = sc[s+t]
			} else {
				sc[s] = x[p*channels+c]
			}
		}
	}
}
