package metal

import (
	"sync"

	"github.com/mlx-moe/mlx-moe/graph"
)

// memKind is what a device buffer was allocated for (graph.MemoryUse's
// parts).
type memKind int

const (
	memTensor memKind = iota
	memWeights
	memSlots
	memScratch
)

// ledger records every live buffer the executor allocated, with its size
// and use, so MemoryUse is the sum of distinct live buffers. The slot
// allocator may run on other goroutines, hence the lock.
type ledger struct {
	mu   sync.Mutex
	live map[*buffer]ledgerEntry
}

type ledgerEntry struct {
	kind memKind
	n    int64
}

// alloc allocates a device buffer of n bytes for kind and records it.
func (e *Executor) alloc(n int, kind memKind) (*buffer, error) {
	b, err := e.dev.alloc(n)
	if err != nil {
		return nil, err
	}
	e.ledger.mu.Lock()
	if e.ledger.live == nil {
		e.ledger.live = map[*buffer]ledgerEntry{}
	}
	e.ledger.live[b] = ledgerEntry{kind, int64(n)}
	e.ledger.mu.Unlock()
	return b, nil
}

// release gives a buffer alloc made back to the device.
func (e *Executor) release(b *buffer) {
	e.ledger.mu.Lock()
	delete(e.ledger.live, b)
	e.ledger.mu.Unlock()
	e.dev.release(b)
}

// MemoryUse is the memory of the executor's live device buffers
// (graph.MemoryReporter). Weights the loader read into AllocBuffer's
// buffers are bound in place and counted once; only host weights outside
// them (small ones in the Go heap) have a device copy, counted here.
func (e *Executor) MemoryUse() graph.MemoryUse {
	e.ledger.mu.Lock()
	defer e.ledger.mu.Unlock()
	var u graph.MemoryUse
	for _, x := range e.ledger.live {
		switch x.kind {
		case memTensor:
			u.Tensors += x.n
		case memWeights:
			u.Weights += x.n
		case memSlots:
			u.ExpertSlots += x.n
		case memScratch:
			u.Scratch += x.n
		}
	}
	return u
}

// scratchAlloc allocates the arena's upload chunks.
func (e *Executor) scratchAlloc(n int) (*buffer, error) { return e.alloc(n, memScratch) }
