package graph

// Mamba1Executor is an optional Executor capability: the two sequence ops
// of Mamba-1's selective state-space mixer (Jamba's mamba layers), each
// continuing from a recurrent state it updates, so a prompt runs in chunks
// and a decode step is n = 1. A model with Mamba-1 layers needs it (model
// load names the executor that lacks it).
type Mamba1Executor interface {
	// Mamba1Conv: out = silu(bias + causal depthwise conv1d of x) over the
	// first n rows, with w [channels, kernel] (tap kernel-1 on the newest
	// input), bias per channel (nil: none), continuing from state
	// [channels, kernel-1] (oldest input first) and updating it.
	Mamba1Conv(out, x *Tensor, n int, state *Tensor, w, bias []float32, kernel int)
	// Mamba1Scan runs the selective scan over n tokens (kernels.Mamba1Scan):
	// x, dt, z and out [n, channels] (dt before its bias dtBias and the
	// softplus, which the scan applies), b and c [n, dstate], from state
	// [channels, dstate], updating it; a [channels, dstate] is
	// -exp(A_log), d [channels] the skip. out may be x or z.
	Mamba1Scan(out, x, dt, b, c, z *Tensor, n int, state *Tensor, dtBias, a, d []float32)
}
