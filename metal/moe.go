package metal

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// MoE runs the routed experts of a batch.
//
// A decode step over SlotExperts (the pager's slots, exact policy) stays in
// the command buffer: see moeEvent. Otherwise, since the pager's Resolve is
// a host call that needs the router's ids, MoE first commits everything encoded so far (the router included) and waits:
// the command buffer is split at each MoE layer. Then, with the ids on the
// host, it resolves the distinct experts (in groups of at most MaxResolve,
// committing after each group so that a later Resolve cannot evict slots
// that encoded kernels still read) and encodes, per present expert, its
// projections with the expert's matrices bound in place (in its slot when
// the pager's memory comes from SlotAllocator), then the weighted sum
// (moe_combine). The rest of the layer is encoded behind it without waiting.
//
// A decode step (one token, one group) runs the fused gate/up SwiGLU
// (gather_qmv_swiglu) and the down projection (gather_qmv) per expert,
// writes the outputs in route order and combines them in one dispatch. A
// batch runs qmm_rows and qmm over each expert's tokens and accumulates one route
// at a time.
func (e *Executor) MoE(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet) error {
	if n == 1 {
		if done, err := e.moeEvent(out, x, r, experts); done || err != nil {
			return err
		}
	}
	if err := e.Sync(); err != nil {
		return err
	}
	topK := r.TopK
	ids := r.IDs[:n*topK]
	s := &e.moe
	byExpert, groups, err := s.expertRoutes(ids, topK, experts.NumExperts(), experts.MaxResolve())
	if err != nil {
		return err
	}
	weights := append(s.weights[:0], r.Weights[:n*topK]...)
	s.weights = weights
	decode := n == 1 && len(groups) == 1
	if !decode {
		clear(out.Data[:n*out.Cols])
	}
	if se, ok := experts.(SlotExperts); ok && n == 1 {
		// The prediction of moeEvent: did this decode resolve read from disk?
		if _, table, _, ok := se.SlotPool(); ok && len(table) > 0 {
			e.allHitsLast[tableKey(table)] = allResident(table, ids)
		}
	}
	for gi, group := range groups {
		if gi > 0 {
			if err := e.Sync(); err != nil {
				return err
			}
		}
		run, err := s.resolveGroup(experts, group, len(groups) == 1, weights, ids, topK)
		if err != nil {
			return err
		}
		m := &moeBatch{e: e, x: x, out: out, topK: topK, weights: weights, decode: decode}
		if err := m.run(run, byExpert, experts); err != nil {
			return err
		}
	}
	return e.err
}

// expertRoutes groups a batch's routes (ids, topK per token) by expert:
// byExpert[id] lists the indices into ids of expert id's routes, groups
// the distinct experts in increasing id (as the CPU executor and the
// pager's plan of a prompt chunk, pagedExperts.PlanBatch, order them), in
// groups of at most limit (0: one group), one Resolve each. The lists live
// in s and are reused, so that a decode step allocates nothing.
func (s *moeScratch) expertRoutes(ids []int32, topK, experts, limit int) (byExpert map[int32][]int, groups [][]int32, err error) {
	if s.byExpert == nil {
		s.byExpert, s.missing = map[int32][]int{}, map[int32]bool{}
	}
	byExpert = s.byExpert // expert -> its routes; empty for the others
	if len(byExpert) < experts {
		// Room for one route per expert (a decode step); batches grow it.
		one := make([]int, experts)
		for id := range one {
			if _, ok := byExpert[int32(id)]; !ok {
				byExpert[int32(id)] = one[id : id : id+1]
			}
		}
	}
	for _, id := range s.distinct { // the experts of the last call
		byExpert[id] = byExpert[id][:0]
	}
	s.distinct = s.distinct[:0]
	for i, id := range ids {
		if id < 0 || int(id) >= experts {
			return nil, nil, fmt.Errorf("route %d of token %d: expert id %d out of range (%d experts)", i%topK, i/topK, id, experts)
		}
	}
	for i, id := range ids {
		routes := byExpert[id]
		if len(routes) == 0 {
			s.distinct = append(s.distinct, id)
		}
		byExpert[id] = append(routes, i)
	}
	distinct := s.distinct
	slices.Sort(distinct)
	groups = append(s.groups[:0], distinct)
	if limit > 0 && len(distinct) > limit {
		groups = groups[:0]
		for lo := 0; lo < len(distinct); lo += limit {
			groups = append(groups, distinct[lo:min(lo+limit, len(distinct))])
		}
	}
	s.groups = groups
	return byExpert, groups, nil
}

// resolveGroup resolves one group of experts and returns those present
// (a list reused by the next call). When the group is the whole batch
// (single), a missing expert's routes are dropped and the token's other
// weights renormalised (fast policy); in a batch of several groups every
// expert must be resolved.
func (s *moeScratch) resolveGroup(experts graph.ExpertSet, group []int32, single bool, weights []float32, ids []int32, topK int) ([]int32, error) {
	present, err := experts.Resolve(group)
	if err != nil {
		return nil, err
	}
	if len(present) != len(group) {
		return nil, fmt.Errorf("Resolve of %d experts answered for %d", len(group), len(present))
	}
	run := s.run[:0]
	clear(s.missing)
	for j, id := range group {
		if present[j] {
			run = append(run, id)
		} else if !single {
			return nil, fmt.Errorf("expert %d was not resolved", id)
		} else {
			s.missing[id] = true
		}
	}
	s.run = run
	if len(s.missing) > 0 {
		renormalize(weights, ids, s.missing, topK)
	}
	return run, nil
}

// renormalize rescales each token's weights so the experts present keep the
// total the router gave all of them (fast policy) and zeroes the missing.
func renormalize(weights []float32, ids []int32, missing map[int32]bool, topK int) {
	for t := 0; t < len(ids)/topK; t++ {
		w := weights[t*topK : (t+1)*topK]
		var all, kept float32
		for k := range w {
			all += w[k]
			if !missing[ids[t*topK+k]] {
				kept += w[k]
			}
		}
		for k := range w {
			if missing[ids[t*topK+k]] || kept == 0 {
				w[k] = 0
			} else {
				w[k] *= all / kept
			}
		}
	}
}

// moeScratch holds MoE's lists between calls, so that a decode step
// allocates nothing: each is emptied (not freed) at the start of a call.
type moeScratch struct {
	byExpert map[int32][]int // expert -> its routes; experts of earlier calls keep an empty list
	distinct []int32
	groups   [][]int32
	weights  []float32
	run      []int32
	missing  map[int32]bool
	list     []moeExpert
	host     []float32 // hostExpert's activations
	tokens   []uint32  // a batch expert's tokens (qmm_rows' xrow)
	clamped  []clampedExpert
}

// moeExpert is one expert of a batch and the routes it serves.
type moeExpert struct {
	gate, up, down *kernels.Matrix
	routes         []int // indices into the batch's ids (token = route / topK)
	first          int   // scratch row of routes[0] (batches)
}

// moeBatch encodes the experts of one Resolve.
type moeBatch struct {
	e       *Executor
	x, out  *graph.Tensor
	topK    int
	weights []float32 // per route, after renormalisation
	decode  bool
}

// run encodes the experts of run. Scratch rows: row j of h [*, inter] and
// y [*, hidden] hold route j's hidden activation and output, where a decode
// step numbers its routes by k and a batch numbers them in expert order.
func (m *moeBatch) run(run []int32, byExpert map[int32][]int, experts graph.ExpertSet) error {
	e := m.e
	hidden := m.x.Cols
	list := e.moe.list[:0]
	defer func() { e.moe.list = list[:0] }()
	rows, inter := 0, 0
	for _, id := range run {
		gate, up, down := experts.Expert(id)
		if gate == nil || up == nil || down == nil {
			return fmt.Errorf("expert %d was resolved but has no weights", id)
		}
		if inter == 0 {
			inter = gate.Rows
		}
		if gate.Cols != hidden || up.Cols != hidden || gate.Rows != inter || up.Rows != inter || down.Cols != inter || down.Rows != m.out.Cols {
			return fmt.Errorf("expert %d: gate [%d,%d], up [%d,%d], down [%d,%d] do not fit hidden size %d and the layer's %d intermediate",
				id, gate.Rows, gate.Cols, up.Rows, up.Cols, down.Rows, down.Cols, hidden, inter)
		}
		list = append(list, moeExpert{gate, up, down, byExpert[id], rows})
		rows += len(byExpert[id])
	}
	if m.decode {
		rows = m.topK
	}
	if rows == 0 {
		return nil
	}
	h := e.scratchBuf("moe.h", 4*rows*inter)
	u := e.scratchBuf("moe.u", 4*rows*inter)
	y := e.scratchBuf("moe.y", 4*rows*hidden)
	zeros := e.scratchBuf("zeros", 4*max(rows, hidden))
	if e.err != nil {
		return e.err
	}
	// Nothing is in flight (MoE committed first), so the host may write the
	// scratch buffers directly.
	if m.decode {
		clear(y.data[:4*rows*hidden]) // routes of missing experts stay zero
	}
	// Experts without a kernel (dense matrices) run on the host now, into
	// the same scratch rows.
	for _, ex := range list {
		if expertOnDevice(e, ex.gate, ex.up, ex.down) {
			continue
		}
		e.hostOps[hostOp{"MoE expert", matrixKind(ex.gate)}]++
		for i, route := range ex.routes {
			j, t := ex.first+i, route/m.topK
			if m.decode {
				j = route
			}
			yrow := unsafe.Slice((*float32)(unsafe.Pointer(&y.data[4*j*hidden])), hidden)
			e.hostExpert(yrow, m.x.Data[t*hidden:(t+1)*hidden], ex.gate, ex.up, ex.down)
		}
	}
	rowsOf := func(index int, b *buffer, first, n, width int) binding {
		return binding{index: index, buf: b, off: 4 * first * width, n: 4 * n * width}
	}
	// Each dispatch runs one expert with its matrices bound as slot 0 of
	// the gather kernels: ids and table are zeros.
	for _, ex := range list {
		if !expertOnDevice(e, ex.gate, ex.up, ex.down) {
			continue
		}
		gq, uq, dq := ex.gate.Q, ex.up.Q, ex.down.Q
		nr := len(ex.routes)
		if m.decode {
			// One route per expert; its rows are the route's k.
			k := ex.routes[0]
			g, up, d := e.quant(0, gq, false), e.quant(3, uq, false), e.quant(0, dq, false)
			e.run(quantName("gather_qmv_swiglu", gq), [3]int{ceilDiv(inter, qmvRowsPerTG), 1, 1}, [3]int{qmvThreads, 1, 1},
				g[0], g[1], g[2], up[0], up[1], up[2], e.tensor(6, m.x, 0), rowsOf(7, h, k, 1, inter),
				binding{index: 8, buf: zeros, n: 4}, binding{index: 9, buf: zeros, n: 4},
				e.upload(10, gatherParams{uint32(inter), uint32(hidden), 1}))
			e.run(quantName("gather_qmv", dq), [3]int{ceilDiv(hidden, qmvRowsPerTG), 1, 1}, [3]int{qmvThreads, 1, 1},
				d[0], d[1], d[2], rowsOf(3, h, k, 1, inter), rowsOf(4, y, k, 1, hidden),
				binding{index: 5, buf: zeros, n: 4}, binding{index: 6, buf: zeros, n: 4},
				e.upload(7, gatherParams{uint32(hidden), uint32(inter), 1}))
			continue
		}
		// A batch: qmm_rows reads the expert's tokens' rows of x through
		// xrow, qmm the contiguous rows of h; both dequantize each weight
		// once per tile of 32 routes.
		tokens := e.moe.tokens[:0]
		for _, route := range ex.routes {
			tokens = append(tokens, uint32(route/m.topK))
		}
		e.moe.tokens = tokens
		xrow := e.upload(6, tokens)
		grid := func(outRows int) [3]int { return [3]int{ceilDiv(outRows, qmmTile), ceilDiv(nr, qmmTile), 1} }
		threads := [3]int{qmmThreads, 1, 1}
		up := e.quant(0, uq, false)
		e.run(quantName("qmm_rows", uq), grid(inter), threads,
			up[0], up[1], up[2], e.tensor(3, m.x, 0), rowsOf(4, u, ex.first, nr, inter),
			e.upload(5, qmmParams{uint32(inter), uint32(hidden), uint32(nr)}), xrow)
		g := e.quant(0, gq, false)
		e.run(quantName("qmm_rows", gq), grid(inter), threads,
			g[0], g[1], g[2], e.tensor(3, m.x, 0), rowsOf(4, h, ex.first, nr, inter),
			e.upload(5, qmmParams{uint32(inter), uint32(hidden), uint32(nr)}), xrow)
		e.run("swiglu", [3]int{ceilDiv(nr*inter, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
			rowsOf(0, h, ex.first, nr, inter), rowsOf(1, u, ex.first, nr, inter), rowsOf(2, h, ex.first, nr, inter),
			e.upload(3, uint32(nr*inter)))
		d := e.quant(0, dq, false)
		e.run(quantName("qmm", dq), grid(hidden), threads,
			d[0], d[1], d[2], rowsOf(3, h, ex.first, nr, inter), rowsOf(4, y, ex.first, nr, hidden),
			e.upload(5, qmmParams{uint32(hidden), uint32(inter), uint32(nr)}))
	}
	groups := [3]int{ceilDiv(hidden, elemThreads), 1, 1}
	threads := [3]int{elemThreads, 1, 1}
	if m.decode {
		e.run("moe_combine", groups, threads,
			binding{index: 0, buf: zeros, n: 4 * hidden}, rowsOf(1, y, 0, m.topK, hidden),
			e.upload(2, m.weights[:m.topK]), e.tensor(3, m.out, 0),
			e.upload(4, uint32(hidden)), e.upload(5, uint32(m.topK)))
		return e.err
	}
	// One dispatch for the batch: out[t] += w * y[row] over the token's
	// routes of this group of experts (out was cleared before the first).
	rowOf := make([]uint32, len(m.weights))
	for i := range rowOf {
		rowOf[i] = noRow
	}
	for _, ex := range list {
		for i, route := range ex.routes {
			rowOf[route] = uint32(ex.first + i)
		}
	}
	n := len(m.weights) / m.topK
	e.run("moe_combine_rows", [3]int{ceilDiv(hidden, elemThreads), n, 1}, threads,
		binding{index: 0, buf: y, n: 4 * rows * hidden}, e.upload(1, rowOf), e.upload(2, m.weights),
		e.tensor(3, m.out, 0), e.upload(4, uint32(hidden)), e.upload(5, uint32(m.topK)))
	return e.err
}

// noRow marks a route moe_combine_rows skips.
const noRow = 0xffffffff

// expertOnDevice reports whether the expert's matrices have kernels.
func expertOnDevice(e *Executor, gate, up, down *kernels.Matrix) bool {
	if gate.Q == nil || up.Q == nil || down.Q == nil || !sameFormat(gate.Q, up.Q) {
		return false
	}
	return e.dev.hasKernel(quantName("gather_qmv_swiglu", gate.Q)) && e.dev.hasKernel(quantName("gather_qmv", down.Q)) &&
		e.dev.hasKernel(quantName("qmm_rows", gate.Q)) && e.dev.hasKernel(quantName("qmm", down.Q))
}

func sameFormat(a, b *kernels.Quant) bool {
	return a.Bits == b.Bits && a.GroupSize == b.GroupSize && a.F16Scales == b.F16Scales
}

// hostExpert computes one SwiGLU expert on the host: y = down(silu(gate x) * up x).
func (e *Executor) hostExpert(y, x []float32, gate, up, down *kernels.Matrix) {
	if need := gate.Rows + up.Rows; cap(e.moe.host) < need {
		e.moe.host = make([]float32, need)
	}
	g, u := e.moe.host[:gate.Rows], e.moe.host[gate.Rows:gate.Rows+up.Rows]
	kernels.MatMul(g, x, 1, gate)
	kernels.MatMul(u, x, 1, up)
	kernels.SwiGLU(g, g, u)
	kernels.MatMul(y, g, 1, down)
}
