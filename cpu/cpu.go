// Package cpu is the executor that runs graph ops on the host with the
// reference kernels. It works everywhere and is what CI tests; every other
// executor is checked against it.
package cpu

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// Executor runs each op as it is issued. It is used by one forward pass at
// a time (the model serialises them).
type Executor struct {
	// Int8Experts runs the routed experts' gate and up products at decode
	// on int8 activations (kernels.DecodeInput.Int8) where the CPU has
	// integer dot products, and Int8ExpertDown their down products too.
	// Both trade precision for speed (BENCHMARKS.md, "Int8 row kernels";
	// model/activations_test.go measures each: held-out NLL of the trained
	// model and fixture logits). Off by default, which keeps every
	// fidelity test on the exact float path; mlxmoe.Options.Int8Experts
	// turns the first on.
	Int8Experts, Int8ExpertDown bool

	// tensorBytes is the size of the live NewTensor tensors (MemoryUse).
	tensorBytes atomic.Int64

	// expertScratch holds the gathered inputs, gate, up and output rows of
	// the expert being run, reused across experts and calls.
	expertScratch [4][]float32
	moe           moeScratch
	// viewScratch holds strided views gathered into contiguous rows for the
	// kernels (prefill only: a single row of a view is contiguous).
	viewScratch [8][]float32
	route       kernels.RouteScratch
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

var (
	_ graph.Executor       = (*Executor)(nil)
	_ graph.MemoryReporter = (*Executor)(nil)
)

func (*Executor) Name() string { return "cpu" }

// Immediate: each op has run when its call returns, so the host may read
// any tensor at any time without a round trip.
func (*Executor) Immediate() bool { return true }

func (ex *Executor) NewTensor(rows, cols int) *graph.Tensor {
	ex.tensorBytes.Add(4 * int64(rows*cols))
	return &graph.Tensor{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// Free drops the tensor's storage (the garbage collector reclaims it); a
// use after Free fails loudly instead of reading stale values.
func (ex *Executor) Free(t *graph.Tensor) {
	if t.Data != nil && t.Stride == 0 && len(t.Data) == t.Rows*t.Cols {
		ex.tensorBytes.Add(-4 * int64(len(t.Data)))
	}
	t.Data = nil
}

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

func (ex *Executor) MulSigmoid(out, x, g *graph.Tensor, n int) {
	for t := 0; t < n; t++ {
		o, xr, gr := out.Row(t), x.Row(t), g.Row(t)
		sg := ex.viewBuf(7, len(gr))
		kernels.SigmoidVec(sg, gr)
		for i := range xr {
			o[i] = xr[i] * sg[i%len(sg)]
		}
	}
}

func (ex *Executor) Route(r *graph.Routes, logits *graph.Tensor, n int, p *kernels.Routing) {
	r.Tokens = n
	for t := 0; t < n; t++ {
		kernels.Route(logits.Row(t), p,
			r.IDs[t*r.TopK:(t+1)*r.TopK], r.Weights[t*r.TopK:(t+1)*r.TopK], &ex.route)
	}
}

// MoE groups the batch's tokens by expert so each expert's matrices are
// read once per batch (the CPU form of gather_qmm). When the batch routes to
// more distinct experts than one Resolve can take, they are resolved and run
// in groups. Experts with at most a decode batch of tokens (every expert at
// decode) run together as parallel regions over (expert x row block);
// experts with more tokens run one after another through MatMul's GEMM.
func (ex *Executor) MoE(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet) error {
	s := &ex.moe
	s.int8, s.int8Down = ex.Int8Experts, ex.Int8ExpertDown
	limit, err := s.begin(out, n, r, experts)
	if err != nil {
		return err
	}
	for lo := 0; lo < len(s.distinct); lo += limit {
		group, present, err := s.resolve(experts, lo, limit, r.TopK)
		if err != nil {
			return err
		}
		s.batch = s.batch[:0]
		for j, e := range group {
			if !present[j] {
				if len(group) < len(s.distinct) {
					return fmt.Errorf("expert %d was not resolved", e)
				}
				continue
			}
			gate, up, down := experts.Expert(e)
			if gate == nil {
				return fmt.Errorf("expert %d was resolved but has no weights", e)
			}
			routes := s.routes(lo + j)
			if len(routes) > kernels.DecodeTokens {
				// Flush the decode experts before it so the output sums
				// experts in routing order however they were grouped
				// (exact paging stays bitwise equal to resident).
				if err := s.runDecode(out, x, r.TopK); err != nil {
					return err
				}
				ex.runExpert(out, x, routes, r.TopK, s.weights, gate, up, down)
				continue
			}
			if len(s.batch) < cap(s.batch) {
				s.batch = s.batch[:len(s.batch)+1] // keep the entry's buffers
			} else {
				s.batch = append(s.batch, moeExpert{})
			}
			b := &s.batch[len(s.batch)-1]
			b.gate, b.up, b.down, b.routes = gate, up, down, routes
		}
		if err := s.runDecode(out, x, r.TopK); err != nil {
			return err
		}
	}
	return nil
}

// begin groups the batch's routes by expert, copies their weights and
// clears out; it returns how many experts one Resolve may take.
func (s *moeScratch) begin(out *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet) (int, error) {
	ids := r.IDs[:n*r.TopK]
	for _, e := range ids {
		if e < 0 || int(e) >= experts.NumExperts() {
			return 0, fmt.Errorf("route to expert %d of %d", e, experts.NumExperts())
		}
	}
	// Sized once for the layer and the batch, so that an expert id or a
	// count of distinct experts not seen before costs no allocation.
	if ne := experts.NumExperts(); len(s.slot) < ne {
		s.slot = append(s.slot, make([]int32, ne-len(s.slot))...)
		for i := range s.slot {
			s.slot[i] = -1
		}
	}
	s.distinct = slices.Grow(s.distinct[:0], len(ids))
	s.start = slices.Grow(s.start[:0], len(ids)+1)
	s.group(ids)
	s.weights = append(s.weights[:0], r.Weights[:len(ids)]...)
	clear(out.Data[:n*out.Cols])
	limit := experts.MaxResolve()
	if limit <= 0 {
		limit = len(s.distinct)
	}
	return limit, nil
}

// resolve resolves the group of at most limit distinct experts from lo on;
// when that is every expert of the batch, the weights of each token's
// present experts are renormalised for the missing ones (fast policy).
func (s *moeScratch) resolve(experts graph.ExpertSet, lo, limit, topK int) (group []int32, present []bool, err error) {
	group = s.distinct[lo:min(lo+limit, len(s.distinct))]
	if present, err = experts.Resolve(group); err != nil {
		return nil, nil, err
	}
	if len(present) != len(group) {
		return nil, nil, fmt.Errorf("resolving %d experts reported %d of them", len(group), len(present))
	}
	if len(group) == len(s.distinct) {
		s.present = slices.Grow(s.present[:0], len(s.weights))[:len(s.weights)]
		for j := range group {
			for _, route := range s.routes(lo + j) {
				s.present[route] = present[j]
			}
		}
		renormalizeMissing(s.weights, s.present, topK)
	}
	return group, present, nil
}

// moeScratch is the MoE state kept across calls so a decode step allocates
// nothing: the batch's routes grouped by expert, the experts of the current
// Resolve group and their activations.
type moeScratch struct {
	slot     []int32 // expert id -> index into distinct, -1 when not routed
	distinct []int32 // routed experts in order of first use
	start    []int   // distinct[i]'s routes are order[start[i]:start[i+1]]
	order    []int   // route indices (token*topK + k) grouped by expert
	weights  []float32
	present  []bool // per route
	batch    []moeExpert

	// The decode regions' work functions (bound once, so starting a
	// region allocates nothing) and what they read.
	gateUp, downSum func(lo, hi int)
	out             *graph.Tensor
	topK            int
	blocks          int  // row blocks per expert in the first region
	ragged          bool // experts differ in size: one item per expert
	int8, int8Down  bool // Executor.Int8Experts, Int8ExpertDown
}

// moeExpert is one expert of a decode region with its buffers: in is its
// tokens' x, act the SwiGLU activations fed to down.
type moeExpert struct {
	gate, up, down *kernels.Matrix
	routes         []int
	in, act        kernels.DecodeInput
	inp            *kernels.DecodeInput // in, or another expert's for the same tokens
	g, u, y        []float32
	xs             []float32
}

// routes returns the route indices of distinct expert i.
func (s *moeScratch) routes(i int) []int { return s.order[s.start[i]:s.start[i+1]] }

// group sorts the routes ids by expert (a counting sort: ids are small).
// The experts go in increasing id order (and the pager's plan of a prompt
// chunk follows it), so each token's outputs are added up in the same
// order whatever other tokens share the batch and however the experts are
// split into Resolve groups: a sequence decoded in a batch gets bitwise
// what it gets alone, and exact paging what the resident model gets.
func (s *moeScratch) group(ids []int32) {
	s.distinct = s.distinct[:0]
	for _, e := range ids {
		if int(e) >= len(s.slot) {
			s.slot = append(s.slot, make([]int32, int(e)+1-len(s.slot))...)
			for i := range s.slot {
				s.slot[i] = -1
			}
			for _, d := range s.distinct {
				s.slot[d] = 0
			}
		}
		if s.slot[e] < 0 {
			s.slot[e] = 0
			s.distinct = append(s.distinct, e)
		}
	}
	slices.Sort(s.distinct)
	s.start = slices.Grow(s.start[:0], len(s.distinct)+1)[:len(s.distinct)+1]
	clear(s.start)
	for i, e := range s.distinct {
		s.slot[e] = int32(i)
	}
	for _, e := range ids {
		s.start[s.slot[e]+1]++
	}
	for i := 1; i < len(s.start); i++ {
		s.start[i] += s.start[i-1]
	}
	// Fill each expert's routes in route order, using start[i] as its
	// cursor, then shift the cursors back to the starts.
	s.order = slices.Grow(s.order[:0], len(ids))[:len(ids)]
	for route, e := range ids {
		i := s.slot[e]
		s.order[s.start[i]] = route
		s.start[i]++
	}
	copy(s.start[1:], s.start[:len(s.start)-1])
	s.start[0] = 0
	for _, e := range s.distinct {
		s.slot[e] = -1
	}
}

// sameQuant reports whether two matrices' inputs are prepared alike.
func sameQuant(a, b *kernels.Quant) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Bits == b.Bits && a.GroupSize == b.GroupSize
}

// moeRowBlock is the rows of one matrix a work item of a decode region
// covers: enough to amortise the item, small enough that ten experts make
// many more items than cores.
const moeRowBlock = 64

// runDecode runs s.batch (experts with at most DecodeTokens tokens each)
// and adds their weighted outputs to out. The gate and up projections and
// SwiGLU of all experts form one parallel region over (expert, block of
// intermediate rows); down and the weighted sum another, over blocks of
// output rows, each item running every expert on its rows so no two items
// write the same output.
func (s *moeScratch) runDecode(out, x *graph.Tensor, topK int) error {
	if len(s.batch) == 0 {
		return nil
	}
	defer func() { s.batch = s.batch[:0] }()
	hidden := x.Cols
	for i := range s.batch {
		b := &s.batch[i]
		m, inter := len(b.routes), b.gate.Rows
		if b.gate.Cols != hidden || b.up.Rows != inter || b.up.Cols != hidden || b.down.Cols != inter || b.down.Rows != out.Cols {
			return fmt.Errorf("expert matrices gate [%d,%d], up [%d,%d], down [%d,%d] do not fit hidden size %d and output %d",
				b.gate.Rows, b.gate.Cols, b.up.Rows, b.up.Cols, b.down.Rows, b.down.Cols, hidden, out.Cols)
		}
		b.g = slices.Grow(b.g[:0], kernels.DecodeTokens*inter)[:m*inter]
		b.u = slices.Grow(b.u[:0], kernels.DecodeTokens*inter)[:m*inter]
		b.y = slices.Grow(b.y[:0], kernels.DecodeTokens*out.Cols)[:m*out.Cols]
		b.inp = &b.in
		if first := &s.batch[0]; i > 0 && m == 1 && len(first.routes) == 1 && first.routes[0]/topK == b.routes[0]/topK && sameQuant(first.gate.Q, b.gate.Q) {
			// One token (a decode step): every expert reads the same x.
			b.inp = first.inp
			continue
		}
		b.xs = slices.Grow(b.xs[:0], kernels.DecodeTokens*hidden)[:m*hidden]
		for j, route := range b.routes {
			copy(b.xs[j*hidden:(j+1)*hidden], x.Data[(route/topK)*hidden:])
		}
		b.in.Int8 = s.int8
		b.in.Prepare(b.xs, m, hidden, b.gate.Q)
	}
	// Items: expert i's intermediate rows in blocks, expert after expert.
	inter := s.batch[0].gate.Rows
	blocks := (inter + moeRowBlock - 1) / moeRowBlock
	sameInter := true
	for i := range s.batch {
		sameInter = sameInter && s.batch[i].gate.Rows == inter
	}
	if !sameInter {
		blocks = 1 // ragged experts: one item each
	}
	s.blocks, s.ragged = blocks, !sameInter
	if s.gateUp == nil {
		s.gateUp, s.downSum = s.runGateUp, s.runDownSum
	}
	s.out, s.topK = out, topK
	kernels.ParallelFor(len(s.batch)*blocks, 2*moeRowBlock*hidden, s.gateUp)
	for i := range s.batch {
		b := &s.batch[i]
		b.act.Int8 = s.int8Down
		b.act.Prepare(b.g, len(b.routes), b.gate.Rows, b.down.Q)
	}
	kernels.ParallelFor((out.Cols+moeRowBlock-1)/moeRowBlock, len(s.batch)*moeRowBlock*inter, s.downSum)
	s.out = nil
	return nil
}

// runGateUp is the first region's work: items [lo, hi) of (expert, block of
// intermediate rows), each the gate and up rows and their SwiGLU.
func (s *moeScratch) runGateUp(lo, hi int) {
	blocks := s.blocks
	for item := lo; item < hi; item++ {
		b := &s.batch[item/blocks]
		rows := b.gate.Rows
		r0, r1 := (item%blocks)*moeRowBlock, min((item%blocks+1)*moeRowBlock, rows)
		if s.ragged {
			r0, r1 = 0, rows
		}
		kernels.MatVecRows(b.g, b.inp, b.gate, r0, r1)
		kernels.MatVecRows(b.u, b.inp, b.up, r0, r1)
		for t := range b.routes {
			g := b.g[t*rows : (t+1)*rows]
			kernels.SwiGLU(g[r0:r1], g[r0:r1], b.u[t*rows+r0:t*rows+r1])
		}
	}
}

// runDownSum is the second region's work: blocks [lo, hi) of output rows,
// each running every expert's down rows and adding them, weighted, to out.
func (s *moeScratch) runDownSum(lo, hi int) {
	out := s.out
	for blk := lo; blk < hi; blk++ {
		r0, r1 := blk*moeRowBlock, min((blk+1)*moeRowBlock, out.Cols)
		for i := range s.batch {
			b := &s.batch[i]
			kernels.MatVecRows(b.y, &b.act, b.down, r0, r1)
			for j, route := range b.routes {
				t := route / s.topK
				kernels.AddScaled(out.Data[t*out.Cols+r0:t*out.Cols+r1], b.y[j*out.Cols+r0:j*out.Cols+r1], s.weights[route])
			}
		}
	}
}

// runExpert adds expert e's weighted output for the routes (indices into
// the batch's ids: token = route / topK) through MatMul, for experts with
// more tokens than the decode kernels take.
func (ex *Executor) runExpert(out, x *graph.Tensor, routes []int, topK int, weights []float32, gate, up, down *kernels.Matrix) {
	hidden := x.Cols
	m := len(routes)
	xs := ex.scratch(0, m*hidden)
	for j, s := range routes {
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
	for j, s := range routes {
		t := s / topK
		kernels.AddScaled(out.Data[t*out.Cols:(t+1)*out.Cols], y[j*out.Cols:(j+1)*out.Cols], weights[s])
	}
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
		if shift != nil {
			kernels.Add(o, xr, shift[:len(xr)])
		} else {
			copy(o, xr)
		}
		switch f {
		case graph.Sigmoid:
			kernels.SigmoidVec(o, o)
		case graph.Softplus:
			for i, v := range o {
				o[i] = softplus(v)
			}
		}
		if scale != nil {
			for i, s := range scale[:len(o)] {
				o[i] *= s
			}
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
