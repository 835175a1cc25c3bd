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
	if n <= 0 || n > int64(^uint(0)>>1) {
		return nil, fmt.Errorf("metal: layer %d %s of %d bytes", layer, kind, n)
	}
	b, err := a.e.dev.alloc(int(n))
	if err != nil {
		return nil, fmt.Errorf("metal: layer %d %s of %d bytes: %w", layer, kind, n, err)
	}
	if b.base()%experts.SlotAlign != 0 {
		a.e.dev.release(b)
		return nil, fmt.Errorf("metal: layer %d %s: buffer at %#x is not aligned to %d bytes", layer, kind, b.base(), experts.SlotAlign)
	}
	b.data = b.data[:n:n]
	a.e.regions.add(b)
	return b.data, nil
}

func (a slotAllocator) Free(p []byte) error {
	if len(p) == 0 {
		return fmt.Errorf("metal: freeing an empty slot buffer")
	}
	b := a.e.regions.remove(uintptr(unsafe.Pointer(&p[0])))
	if b == nil {
		return fmt.Errorf("metal: freeing %d bytes at %p that SlotAllocator did not allocate", len(p), &p[0])
	}
	a.e.dev.release(b)
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
