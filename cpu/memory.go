package cpu

import "github.com/mlx-moe/mlx-moe/graph"

// MemoryUse is what the executor itself holds (graph.MemoryReporter): its
// live tensors (caches, runners' activations) and the float scratch its
// ops keep between calls. Weights and expert slots are not the CPU
// executor's: the model holds them in host memory, so those parts are 0.
func (ex *Executor) MemoryUse() graph.MemoryUse {
	var scratch int
	for _, s := range ex.expertScratch {
		scratch += cap(s)
	}
	for _, s := range ex.viewScratch {
		scratch += cap(s)
	}
	return graph.MemoryUse{Tensors: ex.tensorBytes.Load(), Scratch: 4 * int64(scratch)}
}
