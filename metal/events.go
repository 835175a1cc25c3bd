package metal

import (
	"fmt"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// SlotExperts is an ExpertSet whose experts live in one layer's slot pool
// of an experts.Pager (the model's pager adapter). With it a decode step's
// MoE needs no commit: the executor encodes the router, a handoff to the
// host (which reads the router's ids from shared memory and makes those
// experts resident) and the expert kernels, which read the expert->slot
// table on the GPU (gather_qmv_slots). Without it MoE commits and waits.
type SlotExperts interface {
	graph.ExpertSet
	// SlotPool returns the layer's slot pool and expert->slot table (the
	// pager's Pool and Table, in memory from the executor's
	// SlotAllocator) and their layout. ok is false when the set cannot be
	// used this way; it must be false unless the pager's policy is exact,
	// since the kernels cannot renormalise the weights of missing experts.
	SlotPool() (pool []byte, table []int32, layout experts.LayerLayout, ok bool)
	// SlotMatrices returns the gate, up and down matrices viewed over slot
	// 0 of the pool: their shapes, formats and (relative to the pool)
	// part offsets are those of every slot.
	SlotMatrices() (gate, up, down *kernels.Matrix)
	// ResolveTable makes every expert of ids (distinct) resident and
	// leaves its slot in the table until the next ResolveTable or Resolve
	// of the layer.
	ResolveTable(ids []int32) error
}

// slotParts is SlotParts of quantized.metal: a matrix's parts in a slot.
type slotParts struct{ Stride, W, Scales, Biases uint32 }

// moeEvent encodes a decode step's MoE in the event form when experts is a
// usable SlotExperts; it reports false (having encoded nothing) otherwise.
//
// The device signals an event value after the router, the host handoff
// (run at commit, when the device reaches it) resolves the routed experts,
// and the expert kernels wait for the next value: the whole step stays one
// command buffer. The ids are read at the handoff, never at encode time,
// since the router has not run yet.
func (e *Executor) moeEvent(out, x *graph.Tensor, r *graph.Routes, set graph.ExpertSet) (bool, error) {
	se, ok := set.(SlotExperts)
	if !ok || e.err != nil {
		return false, e.err
	}
	pool, table, layout, ok := se.SlotPool()
	topK := r.TopK
	if !ok || len(pool) == 0 || len(table) != se.NumExperts() || len(r.IDs) < topK || len(r.Weights) < topK ||
		(se.MaxResolve() > 0 && se.MaxResolve() < topK) {
		return false, nil
	}
	gate, up, down := se.SlotMatrices()
	if gate == nil || up == nil || down == nil || gate.Q == nil || up.Q == nil || down.Q == nil ||
		!sameFormat(gate.Q, up.Q) || !e.dev.hasKernel(quantName("gather_qmv_swiglu_slots", gate.Q)) ||
		!e.dev.hasKernel(quantName("gather_qmv_slots", down.Q)) {
		return false, nil
	}
	// Everything the kernels read must be device memory: the pool and table
	// from SlotAllocator, the routes from Route's kernel.
	poolBuf, poolOff, ok1 := e.regions.find(uintptr(unsafe.Pointer(&pool[0])), len(pool))
	tableBuf, tableOff, ok2 := e.regions.find(uintptr(unsafe.Pointer(&table[0])), 4*len(table))
	idsBuf, idsOff, ok3 := e.regions.find(uintptr(unsafe.Pointer(&r.IDs[0])), 4*topK)
	wBuf, wOff, ok4 := e.regions.find(uintptr(unsafe.Pointer(&r.Weights[0])), 4*topK)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return false, nil
	}
	// The GPU must not wait at the event while the pager reads from disk
	// (a command buffer that waits too long is killed by the GPU
	// watchdog). Which experts the router picks is unknown until it has
	// run, so the layer's last decode resolve predicts this one: after one
	// that hit entirely the step stays one command buffer; after one that
	// read from disk (or before any) MoE commits at this layer and resolves
	// outside any GPU wait (MoE's split path).
	key := tableKey(table)
	if !e.allHitsLast[key] && !e.eventAlways {
		return false, nil
	}
	hidden, inter := x.Cols, gate.Rows
	if gate.Cols != hidden || up.Cols != hidden || up.Rows != inter || down.Cols != inter || down.Rows != out.Cols {
		return true, fmt.Errorf("slot experts: gate [%d,%d], up [%d,%d], down [%d,%d] do not fit hidden size %d and output %d",
			gate.Rows, gate.Cols, up.Rows, up.Cols, down.Rows, down.Cols, hidden, out.Cols)
	}
	var parts [3]slotParts
	for i, m := range []*kernels.Matrix{gate, up, down} {
		p, err := partsIn(pool, layout, m.Q)
		if err != nil {
			return true, fmt.Errorf("slot experts: %s: %w", [3]string{"gate", "up", "down"}[i], err)
		}
		parts[i] = p
	}

	reached, release := e.event+1, e.event+2
	e.event = release
	e.pending = true
	e.dev.signalEvent(reached)
	e.dev.waitEvent(release)
	res := e.nextResolve()
	res.se, res.table, res.ids, res.key = se, table, r.IDs[:topK], key
	e.handoffs = append(e.handoffs, handoff{reached: reached, release: release, run: res.run})
	e.eventMoEs++

	h := e.scratchBuf("moe.h", 4*topK*inter)
	y := e.scratchBuf("moe.y", 4*topK*hidden)
	zeros := e.scratchBuf("zeros", 4*hidden)
	if e.err != nil {
		return true, e.err
	}
	poolB := binding{index: 0, buf: poolBuf, off: poolOff, n: len(pool)}
	idsB := binding{index: 3, buf: idsBuf, off: idsOff, n: 4 * topK}
	tableB := binding{index: 4, buf: tableBuf, off: tableOff, n: 4 * len(table)}
	threads := [3]int{qmvThreads, 1, 1}
	e.run(quantName("gather_qmv_swiglu_slots", gate.Q), [3]int{ceilDiv(inter, qmvRowsPerTG), topK, 1}, threads,
		poolB, e.tensor(1, x, 0), binding{index: 2, buf: h, n: 4 * topK * inter}, idsB, tableB,
		e.upload(5, gatherParams{uint32(inter), uint32(hidden), uint32(topK)}), e.upload(6, parts[0]), e.upload(7, parts[1]))
	e.run(quantName("gather_qmv_slots", down.Q), [3]int{ceilDiv(hidden, qmvRowsPerTG), topK, 1}, threads,
		poolB, binding{index: 1, buf: h, n: 4 * topK * inter}, binding{index: 2, buf: y, n: 4 * topK * hidden}, idsB, tableB,
		e.upload(5, gatherParams{uint32(hidden), uint32(inter), 1}), e.upload(6, parts[2]))
	// Exact policy: every routed expert is present, so the router's weights
	// are used as they are, in place.
	e.run("moe_combine", [3]int{ceilDiv(hidden, elemThreads), 1, 1}, [3]int{elemThreads, 1, 1},
		binding{index: 0, buf: zeros, n: 4 * hidden}, binding{index: 1, buf: y, n: 4 * topK * hidden},
		binding{index: 2, buf: wBuf, off: wOff, n: 4 * topK}, e.tensor(3, out, 0),
		e.upload(4, uint32(hidden)), e.upload(5, uint32(topK)))
	return true, e.err
}

// partsIn finds the parts of q (a view over slot 0 of pool) as byte offsets
// within a slot, checking that they lie inside the layout's slot.
func partsIn(pool []byte, layout experts.LayerLayout, q *kernels.Quant) (slotParts, error) {
	base := uintptr(unsafe.Pointer(&pool[0]))
	var offs [3]uint32
	for i, part := range []struct {
		p unsafe.Pointer
		n int
	}{
		{unsafe.Pointer(unsafe.SliceData(q.W)), 4 * len(q.W)},
		{unsafe.Pointer(unsafe.SliceData(q.Scales)), 2 * len(q.Scales)},
		{unsafe.Pointer(unsafe.SliceData(q.Biases)), 2 * len(q.Biases)},
	} {
		off := int64(uintptr(part.p) - base)
		if uintptr(part.p) < base || off+int64(part.n) > layout.SlotBytes {
			return slotParts{}, fmt.Errorf("part %d (%d bytes) is not inside slot 0 of the pool (%d bytes a slot)", i, part.n, layout.SlotBytes)
		}
		offs[i] = uint32(off)
	}
	if layout.SlotStride <= 0 || layout.SlotStride > 1<<32-1 || int64(len(pool))%layout.SlotStride != 0 {
		return slotParts{}, fmt.Errorf("slot stride %d does not divide the %d-byte pool (or exceeds 4 GiB)", layout.SlotStride, len(pool))
	}
	return slotParts{uint32(layout.SlotStride), offs[0], offs[1], offs[2]}, nil
}

// tableKey identifies a layer by its expert->slot table.
func tableKey(table []int32) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(table))) }

// allResident reports whether every expert of ids has a slot in table, so
// resolving them reads nothing from disk. An id out of range is left to the
// resolve to report.
func allResident(table []int32, ids []int32) bool {
	for _, id := range ids {
		if id >= 0 && int(id) < len(table) && table[id] < 0 {
			return false
		}
	}
	return true
}

// eventResolve is the host step of one event-form MoE layer: it resolves
// the routed experts and records the prediction for the layer's next step.
// Each is made once with its run function and reused (Executor.resolves),
// so that a decode step allocates nothing.
type eventResolve struct {
	se         SlotExperts
	table, ids []int32 // the layer's expert->slot table, the router's ids in shared memory
	key        uintptr
	distinct   []int32 // scratch
	run        func() error
}

// nextResolve returns an unused eventResolve of this pass.
func (e *Executor) nextResolve() *eventResolve {
	if e.resolvesUsed == len(e.resolves) {
		r := &eventResolve{}
		r.run = func() error {
			e.allHitsLast[r.key] = allResident(r.table, r.ids)
			var err error
			r.distinct, err = resolveRouted(r.se, r.ids, r.distinct[:0])
			return err
		}
		e.resolves = append(e.resolves, r)
	}
	e.resolvesUsed++
	return e.resolves[e.resolvesUsed-1]
}

// resolveRouted resolves the distinct experts of a token's routes, read
// from the router's output in shared memory, listing them in distinct
// (returned for reuse).
func resolveRouted(se SlotExperts, ids, distinct []int32) ([]int32, error) {
	for k, id := range ids {
		if id < 0 || int(id) >= se.NumExperts() {
			return distinct, fmt.Errorf("route %d: expert id %d out of range (%d experts)", k, id, se.NumExperts())
		}
		seen := false
		for _, d := range distinct {
			seen = seen || d == id
		}
		if !seen {
			distinct = append(distinct, id)
		}
	}
	return distinct, se.ResolveTable(distinct)
}
