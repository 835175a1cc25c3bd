package graph

import "github.com/mlx-moe/mlx-moe/kernels"

// Mamba2Executor is an optional Executor capability: the ops of a Mamba-2
// (SSD) mixer. A model with Mamba-2 layers needs it; Load fails on an
// executor without it.
type Mamba2Executor interface {
	// Conv1dBias is Conv1d with a per-channel bias added before the SiLU.
	Conv1dBias(out, x *Tensor, n int, state *Tensor, w, bias []float32, kernel int)
	// Mamba2Scan runs the scan over n tokens (x, y [n, heads*headDim], dt
	// [n, heads] raw, b, c [n, groups*stateDim], any of them views) from
	// state [heads, headDim*stateDim], updating it (kernels.Mamba2Scan).
	Mamba2Scan(y, x, dt, b, c *Tensor, n int, state *Tensor, p *kernels.Mamba2Params)
	// RMSNormGate: out = rmsnorm(x * silu(z)) * w per dim-sized chunk of
	// each row, w holding a whole row's weights (kernels.RMSNormGate).
	RMSNormGate(out, x, z *Tensor, n, dim int, w []float32, eps float32)
}

// Scaler is an optional Executor capability: out = s * x over the first n
// rows (the embedding and residual multipliers of the Granite families).
type Scaler interface {
	Scale(out, x *Tensor, n int, s float32)
}
