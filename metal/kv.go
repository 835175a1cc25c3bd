package metal

import (
	"fmt"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// KV caches on the device (graph.KVExecutor). Half precision is the one
// compact format with kernels: kv_store_f16 writes the rows and sdpa_f16
// reads them in place. The 8- and 4-bit formats have no kernels yet, so
// NewKV refuses them and the model keeps those caches in float32 tensors.

var _ graph.KVExecutor = (*Executor)(nil)

// NewKV allocates a zeroed half-precision cache in a shared buffer; its
// Half slice is the host view (snapshots and host fallbacks read it after
// a commit). Any other format is an error.
func (e *Executor) NewKV(rows, cols int, f kernels.KVFormat, group int) (*graph.KV, error) {
	if f != kernels.KVF16 {
		return nil, fmt.Errorf("metal: no kernels for %v KV caches (only f16)", f)
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("metal: KV cache of %d×%d values", rows, cols)
	}
	n := rows * cols
	b, err := e.dev.alloc(2 * n)
	if err != nil {
		return nil, fmt.Errorf("metal: %v KV cache [%d,%d]: %w", f, rows, cols, err)
	}
	e.regions.add(b)
	half := unsafe.Slice((*uint16)(unsafe.Pointer(&b.data[0])), n)
	return &graph.KV{KVRows: kernels.KVRows{Format: f, Rows: rows, Cols: cols, Half: half}, Dev: b}, nil
}

// FreeKV releases a cache NewKV made once the work encoded so far is done
// with it (at the next commit).
func (e *Executor) FreeKV(c *graph.KV) {
	if b, ok := c.Dev.(*buffer); ok && e.regions.remove(b.base()) != nil {
		e.retired = append(e.retired, b)
	}
	c.KVRows, c.Dev = kernels.KVRows{}, nil
}

// kvRows binds rows row0..row0+n of c from column col on, at index.
func (e *Executor) kvRows(index int, c *graph.KV, row0, n, col int) binding {
	b, ok := c.Dev.(*buffer)
	if !ok || c.Format != kernels.KVF16 {
		e.fail(fmt.Errorf("metal: a %v KV cache [%d,%d] that this executor did not make", c.Format, c.Rows, c.Cols))
		return binding{}
	}
	if row0 < 0 || n < 0 || row0+n > c.Rows || col < 0 || col >= c.Cols {
		e.fail(fmt.Errorf("metal: rows %d..%d, column %d of a KV cache [%d,%d]", row0, row0+n, col, c.Rows, c.Cols))
		return binding{}
	}
	off := 2 * (row0*c.Cols + col)
	return binding{index: index, buf: b, off: off, n: 2*(row0+n)*c.Cols - off}
}

// StoreKV converts n rows of src to half precision into rows row0.. of dst
// with kv_store_f16: one dispatch, src read through its row stride.
func (e *Executor) StoreKV(dst *graph.KV, row0 int, src *graph.Tensor, n int) {
	if n <= 0 {
		return
	}
	if src.Cols < dst.Cols || n > src.Rows {
		e.fail(fmt.Errorf("metal: storing %d rows of a [%d,%d] tensor into a KV cache of %d columns", n, src.Rows, src.Cols, dst.Cols))
		return
	}
	e.run("kv_store_f16", [3]int{ceilDiv(dst.Cols, elemThreads), n, 1}, [3]int{elemThreads, 1, 1},
		e.tensor(0, src, 0), e.kvRows(1, dst, row0, n, 0), e.upload(2, kvStoreParams{uint32(dst.Cols), uint32(src.RowStride())}))
}

// CopyKV copies the first n rows with the device's copy engine.
func (e *Executor) CopyKV(dst, src *graph.KV, n int) {
	if n <= 0 || e.err != nil {
		return
	}
	if dst.Cols != src.Cols {
		e.fail(fmt.Errorf("metal: copying KV rows of %d columns into a cache of %d", src.Cols, dst.Cols))
		return
	}
	d, s := e.kvRows(0, dst, 0, n, 0), e.kvRows(0, src, 0, n, 0)
	if d.buf == nil || s.buf == nil {
		return
	}
	e.pending = true
	e.fail(e.dev.copy(d.buf, 0, s.buf, 0, 2*n*src.Cols))
}

// AttentionKV runs sdpa_f16 with each cache bound at its first column
// (kc0, vc0) and read through its row stride; shapes the kernel does not
// cover run on the host.
func (e *Executor) AttentionKV(out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	if n <= 0 {
		return
	}
	if dk > sdpaMaxDim || dv > sdpaMaxDim || kvHeads <= 0 || heads%kvHeads != 0 || !contiguous(n, out, q) {
		e.onHost("AttentionKV", func() {
			e.host.AttentionKV(out, q, k, kc0, v, vc0, n, pos0, heads, kvHeads, dk, dv, scale)
		})
		return
	}
	rows := pos0 + n
	p := sdpaParams{uint32(pos0), uint32(heads), uint32(kvHeads), uint32(dk), uint32(dv),
		uint32(k.Cols), uint32(v.Cols), scale, 0}
	e.run("sdpa_f16", [3]int{heads, n, 1}, [3]int{sdpaThreads, 1, 1},
		e.tensor(0, q, 0), e.kvRows(1, k, 0, rows, kc0), e.kvRows(2, v, 0, rows, vc0), e.tensor(3, q, 0), // gate: unused
		e.tensor(4, out, 0), e.upload(5, p))
}
