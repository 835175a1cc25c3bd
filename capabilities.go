package mlxmoe

import (
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
)

// What Load may use from an executor beyond graph.Executor. Each is a small
// interface asked for by method set, never by the executor's type, so a new
// device gets each behaviour by implementing the method (see graph's
// package doc, "Adding a device").
type (
	// slotAllocating executors keep the pager's slot pools and tables in
	// their own buffers, which their MoE kernels read in place (Metal).
	slotAllocating interface {
		SlotAllocator() experts.SlotAllocator
	}
	// workingSetSized executors have a memory budget of their own (a GPU's
	// working set) that bounds weights, caches and expert slots together.
	workingSetSized interface {
		WorkingSetBytes() int64
	}
	// immediate executors run each op as it is issued, so reading a value
	// in the middle of a pass (the expert prefetch's prediction) costs no
	// round trip.
	immediate interface {
		Immediate() bool
	}
	// hostOpCounting executors count the ops they had to run on the host
	// because no kernel of theirs covers them.
	hostOpCounting interface {
		HostOps() map[string]int
	}
)

// HostOps returns how many times each op ran on the host for want of a
// device kernel (nil for an executor that is the host, or does not count).
func (m *Model) HostOps() map[string]int {
	if h, ok := m.exec.(hostOpCounting); ok {
		return h.HostOps()
	}
	return nil
}

// MemoryUse reports the memory the model holds now, by part: what its
// executor allocated (graph.MemoryReporter), each live buffer counted once,
// plus what the host holds for an executor that does not own it (dense
// weights without executor buffers, expert slots without a device slot
// allocator). It waits for a generation in progress to end.
func (m *Model) MemoryUse() graph.MemoryUse {
	m.mu.Lock()
	defer m.mu.Unlock()
	var u graph.MemoryUse
	if r, ok := m.exec.(graph.MemoryReporter); ok {
		u = r.MemoryUse()
	}
	if _, ok := m.exec.(graph.BufferAllocator); !ok {
		u.Weights += m.Model.ResidentBytes()
	}
	if _, ok := m.exec.(slotAllocating); !ok {
		u.ExpertSlots += m.slotBytes()
	}
	return u
}

// slotBytes is the size of the pager's slot pools (0 without paging).
func (m *Model) slotBytes() int64 {
	var n int64
	if m.pager != nil {
		for l := range m.Model.Layers {
			if m.pager.HasLayer(l) {
				n += int64(len(m.pager.Pool(l)))
			}
		}
	}
	return n
}
