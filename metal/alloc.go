package metal

import (
	"fmt"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/graph"
)

// SlotAllocator returns the allocator to give the expert pager
// (experts.Config.Allocator): slot pools and tables in shared-storage
// buffers, which the MoE kernels bind in place, so an expert read from disk
// is never copied again. Without it the executor still runs paged experts
// correctly, but uploads every expert it runs.
func (e *Executor) SlotAllocator() experts.SlotAllocator { return slotAllocator{e} }

type slotAllocator struct{ e *Executor }

func (a slotAllocator) Alloc(layer int, kind experts.BufferKind, n int64) ([]byte, error) {
	return a.e.allocShared(n, experts.SlotAlign, memSlots, fmt.Sprintf("layer %d %s", layer, kind))
}

func (a slotAllocator) Free(p []byte) error { return a.e.freeShared(p) }

// AllocBuffer returns a shared-storage buffer of n bytes that the kernels
// bind in place (graph.BufferAllocator): the loader reads large weights
// into them, so they are never copied again.
func (e *Executor) AllocBuffer(n int) ([]byte, error) {
	return e.allocShared(int64(n), 1, memWeights, "weights")
}

// FreeBuffer releases a buffer AllocBuffer returned.
func (e *Executor) FreeBuffer(b []byte) error { return e.freeShared(b) }

// allocShared allocates a registered shared buffer of n bytes for kind,
// starting at a multiple of align; what names it in errors.
func (e *Executor) allocShared(n, align int64, kind memKind, what string) ([]byte, error) {
	if n <= 0 || n > int64(^uint(0)>>1) {
		return nil, fmt.Errorf("metal: %s of %d bytes", what, n)
	}
	b, err := e.alloc(int(n), kind)
	if err != nil {
		return nil, fmt.Errorf("metal: %s of %d bytes: %w", what, n, err)
	}
	if int64(b.base())%align != 0 {
		e.release(b)
		return nil, fmt.Errorf("metal: %s: buffer at %#x is not aligned to %d bytes", what, b.base(), align)
	}
	b.data = b.data[:n:n]
	e.regions.add(b)
	return b.data, nil
}

// freeShared releases a buffer allocShared returned.
func (e *Executor) freeShared(p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("metal: freeing an empty buffer")
	}
	b := e.regions.remove(uintptr(unsafe.Pointer(&p[0])))
	if b == nil {
		return fmt.Errorf("metal: freeing %d bytes at %p that this executor did not allocate", len(p), &p[0])
	}
	e.release(b)
	return nil
}

// NewSlotAllocator returns e's SlotAllocator when e is a Metal executor; the
// second result is false for any other executor (use the pager's default).
func NewSlotAllocator(e graph.Executor) (experts.SlotAllocator, bool) {
	if me, ok := e.(*Executor); ok {
		return me.SlotAllocator(), true
	}
	return nil, false
}
