package experts

// BufferKind says what a buffer the pager allocates is for.
type BufferKind int

const (
	// SlotPool is the expert memory of one layer: capacity slots of
	// LayerLayout.SlotStride bytes each.
	SlotPool BufferKind = iota
	// SlotTable is the expert -> slot table of one layer (int32 per expert),
	// read by the gather kernels.
	SlotTable
)

func (k BufferKind) String() string {
	if k == SlotTable {
		return "slot table"
	}
	return "slot pool"
}

// SlotAllocator hands out the memory the pager fills. The Metal executor
// implements it with shared-storage buffers so the GPU reads slots and tables
// in place; the CPU executor uses DefaultAllocator.
//
// Alloc must return zeroed memory of exactly n bytes aligned to SlotAlign.
// Free releases a buffer Alloc returned; the pager calls it from Close.
type SlotAllocator interface {
	Alloc(layer int, kind BufferKind, n int64) ([]byte, error)
	Free(b []byte) error
}

// DefaultAllocator returns the allocator for the CPU: anonymous memory
// outside the Go heap where the platform has mmap, so that gigabytes of
// slots do not raise the garbage collector's heap target (with GOGC=100 a
// 10 GB live heap would let garbage grow to another 10 GB before a collection).
func DefaultAllocator() SlotAllocator { return defaultAllocator{} }
