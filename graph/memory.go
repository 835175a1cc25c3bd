package graph

// MemoryUse is the memory an executor holds, by what it holds it for. Each
// buffer is counted once, under the use it was allocated for: a weight the
// loader read into an AllocBuffer buffer and the kernels bind in place is
// one buffer, not a host copy plus a device copy.
type MemoryUse struct {
	// Weights: buffers holding model weights (BufferAllocator's, and any
	// device copies the executor made of host weights).
	Weights int64
	// ExpertSlots: the pager's slot pools and expert->slot tables, when
	// the executor allocates them.
	ExpertSlots int64
	// Tensors: live NewTensor tensors, that is the KV and recurrent caches
	// and the runners' planned activations.
	Tensors int64
	// Scratch: the executor's own working memory (kernel scratch, upload
	// buffers, routes).
	Scratch int64
}

// Total is the sum of the parts.
func (u MemoryUse) Total() int64 { return u.Weights + u.ExpertSlots + u.Tensors + u.Scratch }

// MemoryReporter is an optional Executor capability: the memory the
// executor holds now, from its live allocations. Call it between passes,
// from the goroutine that runs the executor.
type MemoryReporter interface {
	MemoryUse() MemoryUse
}
