package graph

// LayerNormExecutor is an optional Executor capability: mean-and-variance
// normalisation with an affine weight and bias (torch.nn.LayerNorm), the
// norms of PhiMoE. A model whose layers use it fails with an error naming
// the executor when the executor lacks it.
type LayerNormExecutor interface {
	// LayerNorm: out = (x-mean)/sqrt(var+eps)*w + b per dim-sized chunk of
	// the first n rows of x (w, b nil: 1 and 0; see kernels.LayerNorm).
	LayerNorm(out, x *Tensor, n, dim int, w, b []float32, eps float32)
}
