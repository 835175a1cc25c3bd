package metal

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// sparseMixerParams is sparsemixer.metal's SparseMixerParams.
type sparseMixerParams struct {
	Experts, Tokens uint32
	Eps             float32
}

// routeSparseMixer is Route for PhiMoE's sparsemixer: route_sparsemixer,
// one thread per token, writing into r's device-visible ids and weights
// as Route does.
func (e *Executor) routeSparseMixer(r *graph.Routes, logits *graph.Tensor, n int, p *kernels.Routing) {
	if p.TopK != 2 || r.TopK != 2 || !contiguous(n, logits) || !e.dev.hasKernel("route_sparsemixer") {
		e.onHost("Route", func() { e.host.Route(r, logits, n, p) })
		return
	}
	ids, weights, ok := e.routeOutputs(r, n)
	if !ok {
		return
	}
	ids.index, weights.index = 1, 2
	e.run("route_sparsemixer", [3]int{ceilDiv(n, 32), 1, 1}, [3]int{32, 1, 1},
		e.tensor(0, logits, 0), ids, weights,
		e.upload(3, sparseMixerParams{Experts: uint32(logits.Cols), Tokens: uint32(n), Eps: p.JitterEps}))
}
