package kernels

import (
	"fmt"
	"math"
	"sync/atomic"
)

// Mamba-1's selective state-space mixer (Jamba's mamba layers) has two
// sequence kernels: a causal depthwise convolution with a bias and SiLU, and
// the selective scan. Both continue from a recurrent state and leave the
// updated state behind, so a prompt can be split into chunks and a decode
// step is a one-token call.

// Mamba1Conv runs t tokens through Mamba-1's causal depthwise convolution:
//
//	out[i,c] = silu(bias[c] + Σ_j w[c,j] · x[i-(kernel-1)+j, c])   (negative times read state)
//
//	state [channels, kernel-1]  the previous kernel-1 inputs of each channel, oldest first; updated
//	x, out [t, channels]        must not overlap
//	w     [channels, kernel]    tap kernel-1 multiplies the newest input
//	bias  [channels], or nil    (mamba_conv_bias)
//
// A fresh sequence starts from a zero state (transformers' left zero
// padding). The state ends holding the last kernel-1 inputs (older state
// entries shift in when t < kernel-1).
func Mamba1Conv(state, x, w, bias, out []float32, t, channels, kernel int) {
	hist := kernel - 1
	if t < 0 || channels <= 0 || kernel <= 0 {
		panic(fmt.Sprintf("kernels.Mamba1Conv: bad shape t=%d channels=%d kernel=%d", t, channels, kernel))
	}
	if len(state) < channels*hist || len(x) < t*channels || len(w) < channels*kernel || len(out) < t*channels ||
		(bias != nil && len(bias) < channels) {
		panic(fmt.Sprintf("kernels.Mamba1Conv: t=%d channels=%d kernel=%d: state %d, x %d, w %d, bias %d, out %d values",
			t, channels, kernel, len(state), len(x), len(w), len(bias), len(out)))
	}
	for c := range channels {
		taps, sc := w[c*kernel:(c+1)*kernel], state[c*hist:(c+1)*hist]
		var b float32
		if bias != nil {
			b = bias[c]
		}
		for i := range t {
			acc := b
			for j, wj := range taps {
				if p := i - hist + j; p < 0 {
					acc += wj * sc[hist+p]
				} else {
					acc += wj * x[p*channels+c]
				}
			}
			out[i*channels+c] = Silu(acc)
		}
		// The window slides by t: keep the newest hist inputs, reading the
		// old state (still intact at higher indices) where t < hist.
		for s := range sc {
			if p := t - hist + s; p < 0 {
				sc[s] = sc[s+t]
			} else {
				sc[s] = x[p*channels+c]
			}
		}
	}
}

// Mamba1Scan runs t tokens through Mamba-1's selective scan, token by
// token (the recurrence is sequential in time; channels are independent
// and run in parallel):
//
//	δ = softplus(dt[i,c] + dtBias[c])   (torch's: x itself above 20)
//	h[c,j] ← exp(δ · a[c,j]) · h[c,j] + δ · b[i,j] · x[i,c]
//	y[i,c] = Σ_j h[c,j] · cm[i,j] + d[c] · x[i,c]
//	out[i,c] = y[i,c] · silu(z[i,c])
//
//	state [channels, dstate]   h, updated
//	x, dt, z, out [t, channels]  dt is dt_proj's output without its bias; out may alias x or z
//	dtBias [channels]           dt_proj's bias
//	b, cm [t, dstate]           the token's input and output projections of the state
//	a     [channels, dstate]    -exp(A_log)
//	d     [channels]            the skip connection
func Mamba1Scan(state, x, dt, dtBias, b, cm, z, a, d, out []float32, t, channels, dstate int) {
	if t < 0 || channels <= 0 || dstate <= 0 {
		panic(fmt.Sprintf("kernels.Mamba1Scan: bad shape t=%d channels=%d dstate=%d", t, channels, dstate))
	}
	tc, ts, cs := t*channels, t*dstate, channels*dstate
	if len(state) < cs || len(x) < tc || len(dt) < tc || len(z) < tc || len(out) < tc ||
		len(b) < ts || len(cm) < ts || len(a) < cs || len(d) < channels || len(dtBias) < channels {
		panic(fmt.Sprintf("kernels.Mamba1Scan: t=%d channels=%d dstate=%d: state %d, x %d, dt %d, dt bias %d, b %d, c %d, z %d, a %d, d %d, out %d values",
			t, channels, dstate, len(state), len(x), len(dt), len(dtBias), len(b), len(cm), len(z), len(a), len(d), len(out)))
	}
	j := mamba1ScanJobs.Swap(nil)
	if j == nil {
		j = new(mamba1ScanJob)
		j.body = j.run
	}
	j.state, j.x, j.dt, j.dtBias, j.b, j.cm, j.z, j.a, j.d, j.out = state, x, dt, dtBias, b, cm, z, a, d, out
	j.t, j.channels, j.dstate = t, channels, dstate
	parallelFor(channels, t*dstate, j.body)
	*j = mamba1ScanJob{body: j.body}
	mamba1ScanJobs.Store(j)
}

// mamba1ScanJob is one Mamba1Scan call's arguments with its work function
// bound once (a closure per call would be a heap allocation per layer per
// token: the worker pool keeps the function).
type mamba1ScanJob struct {
	state, x, dt, dtBias, b, cm, z, a, d, out []float32
	t, channels, dstate                       int
	body                                      func(lo, hi int)
}

// mamba1ScanJobs keeps one idle job between calls (concurrent calls make
// their own).
var mamba1ScanJobs atomic.Pointer[mamba1ScanJob]

// run scans channels [lo, hi) over every token: each channel's state is
// its own, so channel blocks run in parallel.
func (j *mamba1ScanJob) run(lo, hi int) {
	C, N := j.channels, j.dstate
	// decay holds exp(δ·a[c,:]) for one channel and token, computed with
	// the vector exp (the scan's cost is mostly these exponentials); on the
	// stack for the usual state sizes.
	var buf [64]float32
	decay := buf[:0]
	if N > len(buf) {
		decay = make([]float32, N)
	}
	decay = decay[:N]
	for c := lo; c < hi; c++ {
		h, ac := j.state[c*N:(c+1)*N], j.a[c*N:(c+1)*N]
		for i := range j.t {
			k := i*C + c
			dtv, xv := mamba1Softplus(j.dt[k]+j.dtBias[c]), j.x[k]
			bi, ci := j.b[i*N:(i+1)*N], j.cm[i*N:(i+1)*N]
			for s, v := range ac {
				decay[s] = dtv * v
			}
			ExpVec(decay, decay)
			dx := dtv * xv
			var y float32
			for s := range h {
				h[s] = decay[s]*h[s] + dx*bi[s]
				y += h[s] * ci[s]
			}
			j.out[k] = (y + j.d[c]*xv) * Silu(j.z[k])
		}
	}
}

// mamba1Softplus is torch's softplus: log(1+exp(x)), x itself above 20.
func mamba1Softplus(x float32) float32 {
	if x > 20 {
		return x
	}
	return float32(math.Log1p(math.Exp(float64(x))))
}
