package model

import (
	"slices"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// PagerLayers describes the lazily loaded experts to the expert pager: one
// LayerSpec per decoder layer (empty for layers without routed experts).
func (m *Model) PagerLayers() []experts.LayerSpec {
	specs := make([]experts.LayerSpec, len(m.Layers))
	for _, src := range m.ExpertSources() {
		specs[src.Layer] = src.layerSpec()
	}
	return specs
}

// AttachPager makes every lazily loaded MoE layer take its experts from the
// slots of p (made from PagerLayers).
func (m *Model) AttachPager(p *experts.Pager) error {
	for _, src := range m.ExpertSources() {
		l := src.Layer
		x := &pagedExperts{pager: p, layer: l, count: src.Count, slot: make([]int32, src.Count)}
		lay := p.Layout(l)
		for s := 0; s < p.Capacity(l); s++ {
			g, u, d := src.Views(p.Slot(l, s), lay.PartOffsets)
			x.views = append(x.views, [3]*kernels.Matrix{g, u, d})
		}
		if err := m.AttachExperts(l, x); err != nil {
			return err
		}
	}
	return nil
}

// pagedExperts supplies one MoE layer's experts from the pager's slots: the
// matrices of each slot are views built once over the slot's memory.
type pagedExperts struct {
	pager *experts.Pager
	layer int
	count int
	views [][3]*kernels.Matrix // by slot
	slot  []int32              // by expert, from the last Resolve

	// Resolve's buffers, reused so that a decode step allocates nothing:
	// the pager's answer and the presence Resolve returns (valid until the
	// next Resolve); seen marks PlanBatch's distinct experts.
	slots   []int32
	present []bool
	seen    []bool

	// A batch's distinct experts in the order the executor resolves them
	// (PlanBatch), and how many it resolved so far: while one group runs,
	// the next one loads.
	plan    []int32
	planPos int

	// With overlap (OverlapReads) Resolve returns once the misses' reads
	// are queued and Expert waits for the one it is asked for, so the
	// executor runs the resident experts while the others load. pending is
	// that Resolve until FinishReads; loadErr the first error Expert met.
	overlap bool
	pending *experts.Pending
	loadErr error
}

func (x *pagedExperts) NumExperts() int { return x.count }

// MaxResolve: under the exact policy every expert of a Resolve must fit in
// the unpinned slots at once; the fast policy never waits, so has no limit.
// With a planned batch that needs several groups, a group takes half the
// unpinned slots so the next group can load into the other half while it
// runs.
func (x *pagedExperts) MaxResolve() int {
	if x.pager.Policy() == experts.Fast {
		return 0
	}
	full := max(x.pager.Capacity(x.layer)-len(x.pager.Pinned(x.layer)), 1)
	if len(x.plan) > full {
		return max(full/2, 1)
	}
	return full
}

// PlanBatch tells the layer the routes of a prompt chunk (every token's
// top-k; the plan is its distinct experts in increasing id, the order the
// CPU executor groups them in), so that Resolve can start loading each next group of
// experts while the executor runs the current one. See MoE.planBatch.
func (x *pagedExperts) PlanBatch(ids []int32) {
	x.plan, x.planPos = x.plan[:0], 0
	if len(x.seen) < x.count {
		x.seen = make([]bool, x.count)
	}
	for _, e := range ids {
		if e >= 0 && int(e) < x.count && !x.seen[e] {
			x.seen[e] = true
			x.plan = append(x.plan, e)
		}
	}
	for _, e := range x.plan {
		x.seen[e] = false
	}
	slices.Sort(x.plan)
}

// Resolve maps ids to slots through the pager. The slice it returns is
// reused by the next call.
func (x *pagedExperts) Resolve(ids []int32) ([]bool, error) {
	if err := x.FinishReads(); err != nil {
		return nil, err
	}
	if cap(x.slots) < len(ids) {
		x.slots = make([]int32, len(ids))
		x.present = make([]bool, len(ids))
	}
	slots, present := x.slots[:len(ids)], x.present[:len(ids)]
	next := x.nextGroup(ids)
	var err error
	if x.overlap {
		x.pending, err = x.pager.Begin(x.layer, ids, slots)
	} else {
		err = x.pager.Resolve(x.layer, ids, slots)
	}
	if err != nil {
		x.plan, x.planPos = x.plan[:0], 0
		return nil, err
	}
	if len(next) > 0 {
		// The experts of this Resolve stay put until the next one; the
		// next group loads into the other slots meanwhile.
		x.pager.Prefetch(x.layer, next)
	}
	for i, id := range ids {
		x.slot[id] = slots[i]
		present[i] = slots[i] >= 0
	}
	return present, nil
}

// nextGroup follows the plan: if ids is its next group, it returns the group
// after it (empty at the end, or when the executor's groups are not the
// plan's, which drops the plan).
func (x *pagedExperts) nextGroup(ids []int32) []int32 {
	rest := x.plan[x.planPos:]
	if len(rest) < len(ids) || !slices.Equal(rest[:len(ids)], ids) {
		x.plan, x.planPos = x.plan[:0], 0
		return nil
	}
	x.planPos += len(ids)
	rest = rest[len(ids):]
	if len(rest) == 0 {
		x.plan, x.planPos = x.plan[:0], 0
	}
	return rest[:min(len(ids), len(rest))]
}

// Expert returns the matrices of a resolved expert; with overlap it first
// waits for the expert's load, and returns nils if that failed (FinishReads
// then says why).
func (x *pagedExperts) Expert(id int32) (gate, up, down *kernels.Matrix) {
	if x.pending != nil {
		if err := x.pending.Wait(id); err != nil {
			if x.loadErr == nil {
				x.loadErr = err
			}
			return nil, nil, nil
		}
	}
	v := x.views[x.slot[id]]
	return v[0], v[1], v[2]
}

// OverlapReads turns the overlap of reads with the executor's work on or
// off for the layer's next Resolve calls (MoE.forward sets it per pass; only
// the CPU executor asks for each expert's matrices before it runs it, which
// is what the overlap relies on).
func (x *pagedExperts) OverlapReads(on bool) { x.overlap = on && x.pager.Policy() == experts.Exact }

// FinishReads waits for the loads of the last Resolve and releases the
// layer; it returns the load error that made Expert fail, naming the file
// and offset.
func (x *pagedExperts) FinishReads() error {
	if x.pending == nil {
		return nil
	}
	err := x.pending.Done()
	x.pending = nil
	if x.loadErr != nil {
		err, x.loadErr = x.loadErr, nil
	}
	return err
}

// Prefetch starts loading experts without waiting (see MoE.prefetchNext).
func (x *pagedExperts) Prefetch(ids []int32) { x.pager.Prefetch(x.layer, ids) }

// SlotPool, SlotMatrices and ResolveTable let an executor read the pager's
// slots and table itself (the Metal event form: the GPU looks up each
// routed expert's slot, the host only resolves misses). Only the exact
// policy qualifies: under the fast policy the host renormalises weights.
func (x *pagedExperts) SlotPool() (pool []byte, table []int32, layout experts.LayerLayout, ok bool) {
	return x.pager.Pool(x.layer), x.pager.Table(x.layer), x.pager.Layout(x.layer), x.pager.Policy() == experts.Exact
}

// SlotMatrices are the matrices of slot 0; every slot has the same shapes
// at the same offsets.
func (x *pagedExperts) SlotMatrices() (gate, up, down *kernels.Matrix) {
	v := x.views[0]
	return v[0], v[1], v[2]
}

// ResolveTable is Resolve for a caller that reads the slots from the table:
// always synchronous, the GPU reads the slots later.
func (x *pagedExperts) ResolveTable(ids []int32) error {
	x.OverlapReads(false)
	_, err := x.Resolve(ids)
	return err
}
