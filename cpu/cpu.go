// Package cpu is the executor that runs graph ops on the host with the
// reference kernels. It works everywhere and is what CI tests; every other
// executor is checked against it.
package cpu

import (
	"fmt"
	"math"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Executor runs each op as it is issued. It is used by one forward pass at
// a time (the model serialises them).
type Executor struct {
	// expertScratch holds the gathered inputs, gate, up and output rows of
	// the expert being run, reused across experts and calls.
	expertScratch [4][]float32
	// viewScratch holds strided views gathered into contiguous rows for the
	// kernels (prefill only: a single row of a view is contiguous).
	viewScratch [8][]float32
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

// Immediate: each op has run when its call returns, so the host may read
// any tensor at any time without a round trip.
func (*Executor) Immediate() bool { return true }

func (*Executor) NewTensor(rows, cols int) *graph.Tensor {
	return &graph.Tensor{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// Free drops the tensor's storage (the garbage collector reclaims it); a
// use after Free fails loudly instead of reading stale values.
func (*Executor) Free(t *graph.Tensor) { t.Data = nil }

func (*Executor) Read(t *graph.Tensor) []float32 { return t.Data }

func (*Executor) Sync() error { return nil }

// viewBuf returns viewScratch[i] resized to n values: where a strided view
// is gathered for a kernel that takes contiguous rows.
func (ex *Executor) viewBuf(i, n int) []float32 {
	if cap(ex.viewScratch[i]) < n {
		ex.viewScratch[i] = make([]float32, n)
	}
	return ex.viewScratch[i][:n]
}

// dense returns columns [c0, c0+cols) of t's first n rows as one contiguous
// run: t's own storage when it already is one (always for a single row),
// else a copy gathered into view scratch i.
func (ex *Executor) dense(i int, t *graph.Tensor, n, c0, cols int) []float32 {
	s := t.RowStride()
	if n == 1 || (c0 == 0 && cols == s) {
		return t.Data[c0 : (n-1)*s+c0+cols]
	}
	buf := ex.viewBuf(i, n*cols)
	for r := 0; r < n; r++ {
		copy(buf[r*cols:(r+1)*cols], t.Data[r*s+c0:])
	}
	return buf
}

// target returns where an op writing columns [c0, c0+cols) of out's first
// n rows should write: out's storage when that is contiguous, else view
// scratch i, to be put back with store.
func (ex *Executor) target(i int, out *graph.Tensor, n, c0, cols int) []float32 {
	s := out.RowStride()
	if n == 1 || (c0 == 0 && cols == s) {
		return out.Data[c0 : (n-1)*s+c0+cols]
	}
	return ex.viewBuf(i, n*cols)
}

// store puts rows written into target's scratch back into out.
func store(out *graph.Tensor, n, c0, cols int, rows []float32) {
	s := out.RowStride()
	if n == 1 || (c0 == 0 && cols == s) {
		return // written in place
	}
	for r := 0; r < n; r++ {
		copy(out.Data[r*s+c0:r*s+c0+cols], rows[r*cols:])
	}
}

func contiguous(n int, ts ...*graph.Tensor) bool {
	for _, t := range ts {
		if !t.Contiguous(n) {
			return false
		}
	}
	return true
}

func (*Executor) Embed(out *graph.Tensor, table *kernels.Matrix, ids []int32) {
	for t, id := range ids {
		table.Row(int(id), out.Row(t))
	}
}

func (ex *Executor) MatMul(out, x *graph.Tensor, n int, w *kernels.Matrix, bias []float32) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.MatMul(o, ex.dense(0, x, n, 0, x.Cols), n, w)
	store(out, n, 0, out.Cols, o)
	if bias != nil {
		for t := 0; t < n; t++ {
			row := out.Row(t)
			for i, b := range bias {
				row[i] += b
			}
		}
	}
}

func (ex *Executor) MatMulHeads(out *graph.Tensor, outStep int, x *graph.Tensor, xStep int, n int, ws []*kernels.Matrix) {
	for h, w := range ws {
		o := ex.target(1, out, n, h*outStep, w.Rows)
		kernels.MatMul(o, ex.dense(0, x, n, h*xStep, w.Cols), n, w)
		store(out, n, h*outStep, w.Rows, o)
	}
}

func (*Executor) RMSNorm(out, x *graph.Tensor, n, dim int, w []float32, eps float32) {
	if contiguous(n, out, x) {
		kernels.RMSNorm(out.Data, x.Data, w, n*x.Cols/dim, dim, eps)
		return
	}
	for t := 0; t < n; t++ {
		kernels.RMSNorm(out.Row(t), x.Row(t), w, x.Cols/dim, dim, eps)
	}
}

func (*Executor) Rope(x *graph.Tensor, pos []int32, heads, headDim int, p *kernels.RopeParams) {
	if contiguous(len(pos), x) {
		kernels.Rope(x.Data, pos, len(pos), heads, headDim, p)
		return
	}
	for t := range pos {
		kernels.Rope(x.Row(t), pos[t:t+1], 1, heads, headDim, p)
	}
}

func (*Executor) Zero(t *graph.Tensor) {
	if t.Contiguous(t.Rows) {
		clear(t.Data)
		return
	}
	for r := 0; r < t.Rows; r++ {
		clear(t.Row(r))
	}
}

func (*Executor) CopyCols(dst *graph.Tensor, dstRow, dstCol int, src *graph.Tensor, srcRow, srcCol, n, cols int) {
	ds, ss := dst.RowStride(), src.RowStride()
	for t := 0; t < n; t++ {
		copy(dst.Data[(dstRow+t)*ds+dstCol:(dstRow+t)*ds+dstCol+cols], src.Data[(srcRow+t)*ss+srcCol:])
	}
}

func (ex *Executor) Attention(out, q, kCache, vCache *graph.Tensor, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.Attention(o, ex.dense(0, q, n, 0, q.Cols), kCache.Data, vCache.Data, n, pos0, heads, kvHeads, dk, dv,
		kCache.RowStride(), vCache.RowStride(), scale)
	store(out, n, 0, out.Cols, o)
}

func (*Executor) Add(out, a, b *graph.Tensor, n int) { elementwise(kernels.Add, out, a, b, n) }

func (*Executor) SwiGLU(out, gate, up *graph.Tensor, n int) {
	elementwise(kernels.SwiGLU, out, gate, up, n)
}

// elementwise runs an element-wise kernel over the first n rows: in one
// call when the rows are contiguous, else row by row.
func elementwise(kernel func(out, a, b []float32), out, a, b *graph.Tensor, n int) {
	if contiguous(n, out, a, b) {
		m := n * out.Cols
		kernel(out.Data[:m], a.Data[:m], b.Data[:m])
		return
	}
	for t := 0; t < n; t++ {
		kernel(out.Row(t), a.Row(t), b.Row(t))
	}
}

func (*Executor) MulSigmoid(out, x, g *graph.Tensor, n int) {
	for t := 0; t < n; t++ {
		o, xr, gr := out.Row(t), x.Row(t), g.Row(t)
		for i := range xr {
			o[i] = xr[i] * kernels.Sigmoid(gr[i%len(gr)])
		}
	}
}

func (*Executor) Route(r *graph.Routes, logits *graph.Tensor, n int, p *kernels.Routing) {
	r.Tokens = n
	for t := 0; t < n; t++ {
		kernels.Route(logits.Row(t), p,
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

func (ex *Executor) Conv1d(out, x *graph.Tensor, n int, state *graph.Tensor, w []float32, kernel int) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.Conv1dPrefill(state.Data, ex.dense(0, x, n, 0, x.Cols), w, o, n, x.Cols, kernel)
	store(out, n, 0, out.Cols, o)
}

func (*Executor) Activate(out, x *graph.Tensor, n int, f graph.Activation, shift, scale []float32) {
	for t := 0; t < n; t++ {
		o, xr := out.Row(t), x.Row(t)
		for i, v := range xr {
			if shift != nil {
				v += shift[i]
			}
			switch f {
			case graph.Sigmoid:
				v = kernels.Sigmoid(v)
			case graph.Softplus:
				v = softplus(v)
			}
			if scale != nil {
				v *= scale[i]
			}
			o[i] = v
		}
	}
}

// softplus is torch's: log(1+exp(x)), x itself above 20.
func softplus(x float32) float32 {
	if x > 20 {
		return x
	}
	return float32(math.Log1p(math.Exp(float64(x))))
}

func (ex *Executor) GatedDelta(out, q, k, v, g, beta *graph.Tensor, n int, state *graph.Tensor, hk, hv, dk, dv int) {
	qd, kd, vd := ex.dense(0, q, n, 0, q.Cols), ex.dense(2, k, n, 0, k.Cols), ex.dense(3, v, n, 0, v.Cols)
	gd, bd := ex.dense(4, g, n, 0, g.Cols), ex.dense(5, beta, n, 0, beta.Cols)
	o := ex.target(1, out, n, 0, out.Cols)
	if n == 1 {
		kernels.GatedDeltaStep(state.Data, qd, kd, vd, gd, bd, o, hk, hv, dk, dv)
	} else {
		kernels.GatedDeltaChunked(state.Data, qd, kd, vd, gd, bd, o, n, hk, hv, dk, dv, kernels.GatedDeltaDefaultChunk)
	}
	store(out, n, 0, out.Cols, o)
}

func (*Executor) GatedRMSNorm(out, x, z *graph.Tensor, n, dim int, w []float32, eps float32) {
	if contiguous(n, out, x, z) {
		kernels.GatedRMSNorm(out.Data, x.Data, z.Data, w, n*x.Cols/dim, dim, eps)
		return
	}
	for t := 0; t < n; t++ {
		kernels.GatedRMSNorm(out.Row(t), x.Row(t), z.Row(t), w, x.Cols/dim, dim, eps)
	}
}
