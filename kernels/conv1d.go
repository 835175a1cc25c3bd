package kernels

import (
	"fmt"
	"sync/atomic"
)

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
	if t < convTransposeTokens {
		conv1dDirect(state, x, w, nil, out, t, channels, kernel)
	} else {
		conv1dRows(state, x, w, out, t, channels, kernel)
	}
	conv1dShiftState(state, x, t, channels, hist)
}

// conv1dShiftState leaves in state the last hist inputs of each channel
// after the t tokens of x.
func conv1dShiftState(state, x []float32, t, channels, hist int) {
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

// convTransposeTokens is where conv1dRows takes over: below it (decode)
// transposing the taps and state would cost more than the convolution.
const convTransposeTokens = 4

// conv1dDirect is the convolution channel by channel, taps in order, each
// channel's sum starting from its bias (nil: none).
func conv1dDirect(state, x, w, bias, out []float32, t, channels, kernel int) {
	hist := kernel - 1
	for i := range t {
		oi := out[i*channels : (i+1)*channels]
		for c := range oi {
			var acc float32
			if bias != nil {
				acc = bias[c]
			}
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
}

// conv1dRows is the convolution with the taps and the state transposed
// into scratch, so that every token is kernel multiply-adds of whole
// channel rows (vector work), not a strided walk per channel.
func conv1dRows(state, x, w, out []float32, t, channels, kernel int) {
	hist := kernel - 1
	buf := convScratch.Swap(nil)
	if buf == nil {
		buf = new([]float32)
	}
	need := channels * (kernel + hist)
	if cap(*buf) < need {
		*buf = make([]float32, need)
	}
	wT, hs := (*buf)[:channels*kernel], (*buf)[channels*kernel:need]
	for c := range channels {
		for j, wj := range w[c*kernel : (c+1)*kernel] {
			wT[j*channels+c] = wj
		}
		for s, v := range state[c*hist : (c+1)*hist] {
			hs[s*channels+c] = v
		}
	}
	for i := range t {
		oi := out[i*channels : (i+1)*channels]
		clear(oi)
		for j := range kernel {
			var src []float32
			if p := i - hist + j; p < 0 { // state entry hist+p
				src = hs[(hist+p)*channels:]
			} else {
				src = x[p*channels:]
			}
			mulAdd(oi, wT[j*channels:(j+1)*channels], src[:channels])
		}
		SiluVec(oi, oi)
	}
	convScratch.Store(buf)
}

// convScratch keeps Conv1dPrefill's transposed taps and state between calls,
// so a decode step allocates nothing (one idle buffer: a sync.Pool would be
// emptied by GCs; concurrent calls make their own).
var convScratch atomic.Pointer[[]float32]
