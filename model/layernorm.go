package model

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
)

// norm is a decoder layer's (or the final) normalisation over the hidden
// size: RMSNorm with weight w, or, in a LayerNorm model, LayerNorm with
// weight w and bias b.
func (rn *Runner) norm(out, x *graph.Tensor, n int, w, b []float32) {
	c := rn.M.Config
	if rn.M.LayerNorm {
		rn.E.(graph.LayerNormExecutor).LayerNorm(out, x, n, c.HiddenSize, w, b, float32(c.RMSNormEps))
		return
	}
	rn.E.RMSNorm(out, x, n, c.HiddenSize, w, float32(c.RMSNormEps))
}

// checkNorms reports a LayerNorm model on an executor without LayerNorm.
func (rn *Runner) checkNorms() error {
	if _, ok := rn.E.(graph.LayerNormExecutor); rn.M.LayerNorm && !ok {
		return fmt.Errorf("%s uses LayerNorm, which the %s executor does not implement", rn.M.Config.ModelType, rn.E.Name())
	}
	return nil
}
