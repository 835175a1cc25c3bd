package metal

import (
	"fmt"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// MoE runs the routed experts of a batch.
//
// The pager's Resolve is a host call that needs the router's ids, so MoE
// first commits everything encoded so far (the router included) and waits:
// the command buffer is split at each MoE layer. Then, with the ids on the
// host, it resolves the distinct experts (in groups of at most MaxResolve,
// committing after each group so that a later Resolve cannot evict slots
// that encoded kernels still read) and encodes, per present expert, the
// fused gate/up SwiGLU (gather_qmv_swiglu) and the down projection
// (gather_qmv) with the expert's matrices bound in place (in its slot when
// the pager's memory comes from SlotAllocator), and finally the weighted sum
// (moe_combine). The rest of the layer is encoded behind it without waiting.
//
// A decode step (one token, one group) writes the experts' outputs in route
// order and combines them in one dispatch; batches gather each token's input
// rows per expert and accumulate one route at a time.
func (e *Executor) MoE(out, x *graph.Tensor, n int, r *graph.Routes, experts graph.ExpertSet) error {
	if err := e.Sync(); err != nil {
		return err
	}
	topK := r.TopK
	ids := r.IDs[:n*topK]
	byExpert := map[int32][]int{} // expert -> its routes (indices into ids)
	var distinct []int32
	for i, id := range ids {
		if id < 0 || int(id) >= experts.NumExperts() {
			return fmt.Errorf("route %d of token %d: expert id %d out of range (%d experts)", i%topK, i/topK, id, experts.NumExperts())
		}
		if _, seen := byExpert[id]; !seen {
			distinct = append(distinct, id)
		}
		byExpert[id] = append(byExpert[id], i)
	}
	groups := [][]int32{distinct}
	if limit := experts.MaxResolve(); limit > 0 && len(distinct) > limit {
		groups = nil
		for lo := 0; lo < len(distinct); lo += limit {
			groups = append(groups, distinct[lo:min(lo+limit, len(distinct))])
		}
	}
	weights := append([]float32(nil), r.Weights[:n*topK]...)
	decode := n == 1 && len(groups) == 1
	if !decode {
		clear(out.Data[:n*out.Cols])
	}
	for gi, group := range groups {
		if gi > 0 {
			if err := e.Sync(); err != nil {
				return err
			}
		}
		present, err := experts.Resolve(group)
		if err != nil {
			return err
		}
		if len(present) != len(group) {
			return fmt.Errorf("Resolve of %d experts answered for %d", len(group), len(present))
		}
		var run []int32
		missing := map[int32]bool{}
		for j, id := range group {
			if present[j] {
				run = append(run, id)
			} else if len(groups) > 1 {
				return fmt.Errorf("expert %d was not resolved", id)
			} else {
				missing[id] = true
			}
		}
		if len(missing) > 0 {
			renormalize(weights, ids, missing, topK)
		}
		m := &moeBatch{e: e, x: x, out: out, topK: topK, weights: weights, decode: decode}
		if err := m.run(run, byExpert, experts); err != nil {
			return err
		}
	}
	return e.err
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

// moeBatch encodes the experts of one Resolve.
type moeBatch struct {
	e       *Executor
	x, out  *graph.Tensor
	topK    int
	weights []float32 // per route, after renormalisation
	decode  bool
}

// Scratch rows: row j of h [*, inter] and y [*, hidden] belong to route j
// (decode: the route's k) or to the j-th route in expert order (batches);
// xs [*, hidden] holds the input row of each route of a batch.
func (m *moeBatch) run(run []int32, byExpert map[int32][]int, experts graph.ExpertSet) error {
	e := m.e
	hidden := m.x.Cols
	// Row of each route in the scratch buffers.
	var order []int // batches: routes in expert order
	rows := 0
	for _, id := range run {
		order = append(order, byExpert[id]...)
	}
	if m.decode {
		rows = m.topK
	} else {
		rows = len(order)
	}
	if rows == 0 {
		return nil
	}
	inter := 0
	type expert struct {
		id             int32
		gate, up, down *kernels.Matrix
		routes         []int
		first          int // scratch row of routes[0] (batches)
	}
	list := make([]expert, 0, len(run))
	row := 0
	for _, id := range run {
		gate, up, down := experts.Expert(id)
		if gate == nil || up == nil || down == nil {
			return fmt.Errorf("expert %d was resolved but has no weights", id)
		}
		if gate.Cols != hidden || up.Cols != hidden || up.Rows != gate.Rows || down.Cols != gate.Rows || down.Rows != m.out.Cols {
			return fmt.Errorf("expert %d: gate [%d,%d], up [%d,%d], down [%d,%d] do not fit hidden size %d",
				id, gate.Rows, gate.Cols, up.Rows, up.Cols, down.Rows, down.Cols, hidden)
		}
		inter = max(inter, gate.Rows)
		list = append(list, expert{id, gate, up, down, byExpert[id], row})
		row += len(byExpert[id])
	}
	h := e.scratchBuf("moe.h", 4*rows*inter)
	y := e.scratchBuf("moe.y", 4*rows*hidden)
	zeros := e.scratchBuf("zeros", 4*max(rows, hidden))
	if e.err != nil {
		return e.err
	}
	// Nothing is in flight (MoE committed first), so the host may write the
	// scratch buffers directly.
	var xs *buffer
	if m.decode {
		clear(y.data[:4*rows*hidden]) // routes of missing experts stay zero
	} else {
		xs = e.scratchBuf("moe.xs", 4*rows*hidden)
		if xs == nil {
			return e.err
		}
		xf := unsafe.Slice((*float32)(unsafe.Pointer(&xs.data[0])), rows*hidden)
		for j, route := range order {
			t := route / m.topK
			copy(xf[j*hidden:(j+1)*hidden], m.x.Data[t*hidden:(t+1)*hidden])
		}
	}
	// Experts without a kernel (dense matrices, or a format with no
	// instance) run on the host now, into the same scratch rows.
	for _, ex := range list {
		if expertOnDevice(e, ex.gate, ex.up, ex.down) {
			continue
		}
		e.hostOps["MoE expert "+matrixKind(ex.gate)]++
		for i, route := range ex.routes {
			j, t := ex.first+i, route/m.topK
			xrow := m.x.Data[t*hidden : (t+1)*hidden]
			if m.decode {
				j = route
			} else {
				xrow = unsafe.Slice((*float32)(unsafe.Pointer(&xs.data[4*j*hidden])), hidden)
			}
			yrow := unsafe.Slice((*float32)(unsafe.Pointer(&y.data[4*j*hidden])), hidden)
			hostExpert(yrow, xrow, ex.gate, ex.up, ex.down)
		}
	}
	for _, ex := range list {
		if !expertOnDevice(e, ex.gate, ex.up, ex.down) {
			continue
		}
		gq, dq := ex.gate.Q, ex.down.Q
		gate, up, down := e.quant(0, gq, false), e.quant(3, ex.up.Q, false), e.quant(0, dq, false)
		ninter := ex.gate.Rows
		// Each dispatch runs one expert with its matrices bound at slot 0:
		// ids and table are zeros.
		idz := binding{index: 8, buf: zeros, n: 4 * len(ex.routes)}
		tablez := binding{index: 9, buf: zeros, n: 4}
		if m.decode {
			// One route: its output row is the route's k.
			k := ex.routes[0]
			e.run(quantName("gather_qmv_swiglu", gq), [3]int{ceilDiv(ninter, qmvRowsPerTG), 1, 1}, [3]int{qmvThreads, 1, 1},
				gate[0], gate[1], gate[2], up[0], up[1], up[2], e.tensor(6, m.x, 0),
				binding{index: 7, buf: h, off: 4 * k * inter, n: 4 * ninter}, idz, tablez,
				e.upload(10, gatherParams{uint32(ninter), uint32(hidden), 1}))
			e.run(quantName("gather_qmv", dq), [3]int{ceilDiv(hidden, qmvRowsPerTG), 1, 1}, [3]int{qmvThreads, 1, 1},
				down[0], down[1], down[2], binding{index: 3, buf: h, off: 4 * k * inter, n: 4 * ninter},
				binding{index: 4, buf: y, off: 4 * k * hidden, n: 4 * hidden},
				binding{index: 5, buf: zeros, n: 4}, binding{index: 6, buf: zeros, n: 4},
				e.upload(7, gatherParams{uint32(hidden), uint32(ninter), 1}))
			continue
		}
		nr := len(ex.routes)
		e.run(quantName("gather_qmv_swiglu", gq), [3]int{ceilDiv(ninter, qmvRowsPerTG), nr, 1}, [3]int{qmvThreads, 1, 1},
			gate[0], gate[1], gate[2], up[0], up[1], up[2],
			binding{index: 6, buf: xs, off: 4 * ex.first * hidden, n: 4 * nr * hidden},
			binding{index: 7, buf: h, off: 4 * ex.first * inter, n: 4 * nr * inter}, idz, tablez,
			e.upload(10, gatherParams{uint32(ninter), uint32(hidden), 1}))
		// Rows of h are inter apart; the down projection reads ninter of
		// each, so it needs them packed: inter == ninter for every expert
		// of a layer in practice, and otherwise one dispatch per route.
		if ninter == inter {
			e.run(quantName("gather_qmv", dq), [3]int{ceilDiv(hidden, qmvRowsPerTG), nr, 1}, [3]int{qmvThreads, 1, 1},
				down[0], down[1], down[2], binding{index: 3, buf: h, off: 4 * ex.first * inter, n: 4 * nr * inter},
				binding{index: 4, buf: y, off: 4 * ex.first * hidden, n: 4 * nr * hidden},
				binding{index: 5, buf: zeros, n: 4 * nr}, binding{index: 6, buf: zeros, n: 4},
				e.upload(7, gatherParams{uint32(hidden), uint32(ninter), 1}))
			continue
		}
		for i := range nr {
			j := ex.first + i
			e.run(quantName("gather_qmv", dq), [3]int{ceilDiv(hidden, qmvRowsPerTG), 1, 1}, [3]int{qmvThreads, 1, 1},
				down[0], down[1], down[2], binding{index: 3, buf: h, off: 4 * j * inter, n: 4 * ninter},
				binding{index: 4, buf: y, off: 4 * j * hidden, n: 4 * hidden},
				binding{index: 5, buf: zeros, n: 4}, binding{index: 6, buf: zeros, n: 4},
				e.upload(7, gatherParams{uint32(hidden), uint32(ninter), 1}))
		}
	}
	groups := [3]int{ceilDiv(hidden, elemThreads), 1, 1}
	threads := [3]int{elemThreads, 1, 1}
	if m.decode {
		e.run("moe_combine", groups, threads,
			binding{index: 0, buf: zeros, n: 4 * hidden}, binding{index: 1, buf: y, n: 4 * m.topK * hidden},
			e.upload(2, m.weights[:m.topK]), e.tensor(3, m.out, 0),
			e.upload(4, uint32(hidden)), e.upload(5, uint32(m.topK)))
		return e.err
	}
	w := e.upload(2, m.weights)
	one := e.upload(5, uint32(1))
	dim := e.upload(4, uint32(hidden))
	for _, ex := range list {
		for i, route := range ex.routes {
			j, t := ex.first+i, route/m.topK
			o := e.tensor(3, m.out, t)
			o.n = 4 * hidden
			xo := o
			xo.index = 0
			wr := w
			wr.off += 4 * route
			wr.n = 4
			e.run("moe_combine", groups, threads,
				xo, binding{index: 1, buf: y, off: 4 * j * hidden, n: 4 * hidden}, wr, o, dim, one)
		}
	}
	return e.err
}

// expertOnDevice reports whether the expert's matrices have kernels.
func expertOnDevice(e *Executor, gate, up, down *kernels.Matrix) bool {
	if gate.Q == nil || up.Q == nil || down.Q == nil || !sameFormat(gate.Q, up.Q) {
		return false
	}
	return e.dev.hasKernel(quantName("gather_qmv_swiglu", gate.Q)) && e.dev.hasKernel(quantName("gather_qmv", down.Q))
}

func sameFormat(a, b *kernels.Quant) bool {
	return a.Bits == b.Bits && a.GroupSize == b.GroupSize && a.F16Scales == b.F16Scales
}

// hostExpert computes one SwiGLU expert on the host: y = down(silu(gate x) * up x).
func hostExpert(y, x []float32, gate, up, down *kernels.Matrix) {
	g := make([]float32, gate.Rows)
	u := make([]float32, up.Rows)
	kernels.MatMul(g, x, 1, gate)
	kernels.MatMul(u, x, 1, up)
	kernels.SwiGLU(g, g, u)
	kernels.MatMul(y, g, 1, down)
}
