// Package cpu is the executor that runs graph ops on the host with the
// reference kernels. It works everywhere and is what CI tests; every other
// executor is checked against it.
package cpu

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Executor runs each op as it is issued. It is used by one forward pass at
// a time (the model serialises them).
type Executor struct {
	// expertScratch holds the gathered inputs, gate, up and output rows of
	// the expert being run, reused across experts and calls.
	expertScratch [4][]float32
}

// scratch returns expertScratch[i] resized to n values.
func (ex *Executor) scratch(i, n int) []float32 {
	if cap(ex.expertScratch[i]) < n {
		ex.expertScratch[i] = make([]float32, n)
	}
	return ex.expertScratch[i][:n]
}

// New returns a CPU executor.
func New() *Executor { return &Executor{} }

var _ graph.Executor = (*Executor)(nil)

func (*Executor) Name() string { return "cpu" }

func (*Executor) NewTensor(rows, cols int) *graph.Tensor {
	return &graph.Tensor{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

func (*Executor) Read(t *graph.Tensor) []float32 { return t.Data }

func (*Executor) Sync() error { return nil }

func (*Executor) Embed(out *graph.Tensor, table *kernels.Matrix, ids []int32) {
	for t, id := range ids {
		table.Row(int(id), out.Data[t*out.Cols:(t+1)*out.Cols])
	}
}

func (*Executor) MatMul(out, x *graph.Tensor, n int, w *kernels.Matrix, bias []float32) {
	kernels.MatMul(out.Data[:n*out.Cols], x.Data[:n*x.Cols], n, w)
	if bias != nil {
		for t := 0; t < n; t++ {
			row := out.Data[t*out.Cols : (t+1)*out.Cols]
			for i, b := range bias {
				row[i] += b
			}
		}
	}
}

func (*Executor) RMSNorm(out, x *graph.Tensor, n, dim int, w []float32, eps float32) {
	rows := n * x.Cols / dim
	kernels.RMSNorm(out.Data, x.Data, w, rows, dim, eps)
}

func (*Executor) Rope(x *graph.Tensor, pos []int32, heads, headDim int, p *kernels.RopeParams) {
	kernels.Rope(x.Data, pos, len(pos), heads, headDim, p)
}

func (*Executor) Zero(t *graph.Tensor) { clear(t.Data) }

func (*Executor) CopyCols(dst *graph.Tensor, dstRow, dstCol int, src *graph.Tensor, srcRow, srcCol, n, cols int) {
	for t := 0; t < n; t++ {
		copy(dst.Data[(dstRow+t)*dst.Cols+dstCol:(dstRow+t)*dst.Cols+dstCol+cols], src.Data[(srcRow+t)*src.Cols+srcCol:])
	}
}

func (*Executor) Attention(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	kernels.Attention(out.Data, q.Data, kCache.Data, vCache.Data, n, pos0, heads, kvHeads, dk, dv, kCache.Cols, vCache.Cols, scale)
}

func (*Executor) Add(out, a, b *graph.Tensor, n int) {
	m := n * out.Cols
	kernels.Add(out.Data[:m], a.Data[:m], b.Data[:m])
}

func (*Executor) SwiGLU(out, gate, up *graph.Tensor, n int) {
	m := n * out.Cols
	kernels.SwiGLU(out.Data[:m], gate.Data[:m], up.Data[:m])
}

func (*Executor) MulSigmoid(out, x, g *graph.Tensor, n int) {
	for t := 0; t < n; t++ {
		for i := 0; i < x.Cols; i++ {
			gv := g.Data[t*g.Cols+i%g.Cols]
			out.Data[t*out.Cols+i] = x.Data[t*x.Cols+i] * kernels.Sigmoid(gv)
		}
	}
}

func (*Executor) Route(r *graph.Routes, logits *graph.Tensor, n int, p *kernels.Routing) {
	r.Tokens = n
	for t := 0; t < n; t++ {
		kernels.Route(logits.Data[t*logits.Cols:(t+1)*logits.Cols], p,
			r.IDs[t*r.TopK:(t+1)*r.TopK], r.Weights[t*r.TopK:(t+1)*r.TopK])
	}
}

// MoE groups the batch's tokens by expert so each expert's matrices are
// read once per batch (the CPU form of gather_qmm). When the batch routes to
// more distinct experts than one Resolve can take, they are resolved and run
// in groups.
func (ex *Executor) MoE(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet) error {
	ids := r.IDs[:n*r.TopK]
	byExpert := map[int32][]int{}
	var distinct []int32
	for i, e := range ids {
		if _, seen := byExpert[e]; !seen {
			distinct = append(distinct, e)
		}
		byExpert[e] = append(byExpert[e], i)
	}
	groups := [][]int32{distinct}
	if limit := experts.MaxResolve(); limit > 0 && len(distinct) > limit {
		groups = nil
		for lo := 0; lo < len(distinct); lo += limit {
			groups = append(groups, distinct[lo:min(lo+limit, len(distinct))])
		}
	}
	weights := make([]float32, len(ids))
	copy(weights, r.Weights)
	clear(out.Data[:n*out.Cols])
	for _, group := range groups {
		present, err := experts.Resolve(group)
		if err != nil {
			return err
		}
		if len(groups) == 1 {
			presentByID := make([]bool, len(ids))
			for j, e := range group {
				for _, s := range byExpert[e] {
					presentByID[s] = present[j]
				}
			}
			renormalizeMissing(weights, presentByID, r.TopK)
		}
		for j, e := range group {
			if !present[j] {
				if len(groups) > 1 {
					return fmt.Errorf("expert %d was not resolved", e)
				}
				continue
			}
			if err := ex.runExpert(out, x, byExpert[e], r.TopK, weights, experts, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// runExpert adds expert e's weighted output for the routes slots (indices
// into the batch's ids: token = slot / topK).
func (ex *Executor) runExpert(out, x *graph.Tensor, slots []int, topK int, weights []float32, experts graph.ExpertSet, e int32) error {
	gate, up, down := experts.Expert(e)
	if gate == nil {
		return fmt.Errorf("expert %d was resolved but has no weights", e)
	}
	hidden := x.Cols
	m := len(slots)
	xs := ex.scratch(0, m*hidden)
	for j, s := range slots {
		copy(xs[j*hidden:(j+1)*hidden], x.Data[(s/topK)*hidden:])
	}
	inter := gate.Rows
	g := ex.scratch(1, m*inter)
	u := ex.scratch(2, m*inter)
	kernels.MatMul(g, xs, m, gate)
	kernels.MatMul(u, xs, m, up)
	kernels.SwiGLU(g, g, u)
	y := ex.scratch(3, m*out.Cols)
	kernels.MatMul(y, g, m, down)
	for j, s := range slots {
		t := s / topK
		kernels.AddScaled(out.Data[t*out.Cols:(t+1)*out.Cols], y[j*out.Cols:(j+1)*out.Cols], weights[s])
	}
	return nil
}

// renormalizeMissing rescales each token's weights so the experts that are
// present keep the total the router gave all of them (fast policy); with
// every expert present it changes nothing.
func renormalizeMissing(weights []float32, present []bool, topK int) {
	for t := 0; t < len(weights)/topK; t++ {
		w := weights[t*topK : (t+1)*topK]
		p := present[t*topK : (t+1)*topK]
		var all, kept float32
		missing := false
		for k := range w {
			all += w[k]
			if p[k] {
				kept += w[k]
			} else {
				missing = true
			}
		}
		if !missing {
			continue
		}
		for k := range w {
			if !p[k] || kept == 0 {
				w[k] = 0
				continue
			}
			w[k] *= all / kept
		}
	}
}

func (*Executor) Conv1d(out, x *graph.Tensor, n int, state *graph.Tensor, w []float32, kernel int) {
	kernels.Conv1dPrefill(state.Data, x.Data[:n*x.Cols], w, out.Data[:n*out.Cols], n, x.Cols, kernel)
}

func (*Executor) DeltaGates(g, beta, a, b *graph.Tensor, n int, aLog, dtBias []float32) {
	kernels.GatedDeltaGates(g.Data, beta.Data, a.Data, b.Data, aLog, dtBias, n, g.Cols)
}

func (*Executor) GatedDelta(out, q, k, v, g, beta *graph.Tensor, n int, state *graph.Tensor, hk, hv, dk, dv int) {
	if n == 1 {
		kernels.GatedDeltaStep(state.Data, q.Data, k.Data, v.Data, g.Data, beta.Data, out.Data, hk, hv, dk, dv)
		return
	}
	kernels.GatedDeltaChunked(state.Data, q.Data[:n*q.Cols], k.Data[:n*k.Cols], v.Data[:n*v.Cols], g.Data[:n*g.Cols],
		beta.Data[:n*beta.Cols], out.Data[:n*out.Cols], n, hk, hv, dk, dv, kernels.GatedDeltaDefaultChunk)
}

func (*Executor) GatedRMSNorm(out, x, z *graph.Tensor, n, dim int, w []float32, eps float32) {
	rows := n * x.Cols / dim
	kernels.GatedRMSNorm(out.Data, x.Data, z.Data, w, rows, dim, eps)
}
