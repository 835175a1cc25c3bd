package metal

import (
	"fmt"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

// KV caches on the device (graph.KVExecutor), in the layouts of
// kernels.KVRows: half precision (kv_store_f16 writes the rows, sdpa_f16
// reads them in place) and 8- or 4-bit affine quantization (kv_store_q8/q4,
// sdpa_q8/q4). A cache is one shared buffer; a quantized one holds its
// codes, then its scales, then its biases, and KVRows' slices are the host
// views of those parts (snapshots and host fallbacks read them after a
// commit). float32 caches stay plain tensors (Attention).

var _ graph.KVExecutor = (*Executor)(nil)

// NewKV allocates a zeroed cache in a shared buffer.
func (e *Executor) NewKV(rows, cols int, f kernels.KVFormat, group int) (*graph.KV, error) {
	if f != kernels.KVF16 && !f.Quantized() {
		return nil, fmt.Errorf("metal: no kernels for %v KV caches (f16, q8 and q4 have them)", f)
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("metal: KV cache of %d×%d values", rows, cols)
	}
	if f.Quantized() && (group <= 0 || group%8 != 0 || cols%group != 0) {
		return nil, fmt.Errorf("metal: KV cache: %d columns do not divide into quantization groups of %d", cols, group)
	}
	size := kernels.KVBytes(f, rows, cols, group)
	if size > int64(^uint(0)>>1) {
		return nil, fmt.Errorf("metal: %v KV cache [%d,%d] of %d bytes", f, rows, cols, size)
	}
	b, err := e.dev.alloc(int(size))
	if err != nil {
		return nil, fmt.Errorf("metal: %v KV cache [%d,%d]: %w", f, rows, cols, err)
	}
	e.regions.add(b)
	c := &graph.KV{KVRows: kernels.KVRows{Format: f, Rows: rows, Cols: cols, Group: group}, Dev: b}
	n := rows * cols
	if f == kernels.KVF16 {
		c.Half = unsafe.Slice((*uint16)(unsafe.Pointer(&b.data[0])), n)
		return c, nil
	}
	words, groups := n*f.Bits()/32, n/group
	c.Q = unsafe.Slice((*uint32)(unsafe.Pointer(&b.data[0])), words)
	c.Scales = unsafe.Slice((*uint16)(unsafe.Pointer(&b.data[4*words])), groups)
	c.Biases = unsafe.Slice((*uint16)(unsafe.Pointer(&b.data[4*words+2*groups])), groups)
	return c, nil
}

// FreeKV releases a cache NewKV made once the work encoded so far is done
// with it (at the next commit).
func (e *Executor) FreeKV(c *graph.KV) {
	if b, ok := c.Dev.(*buffer); ok && e.regions.remove(b.base()) != nil {
		e.retired = append(e.retired, b)
	}
	c.KVRows, c.Dev = kernels.KVRows{}, nil
}

// kvParts binds rows row0..row0+n of c from column col on: for a half
// cache its values (one binding), for a quantized one its codes, scales
// and biases, at indices index, index+1, index+2 unless placed otherwise.
// ok is false (with the error kept for Sync) when c is not this
// executor's or the range is outside it.
func (e *Executor) kvParts(c *graph.KV, row0, n, col int) (parts []binding, ok bool) {
	b, mine := c.Dev.(*buffer)
	if !mine || (c.Format != kernels.KVF16 && !c.Format.Quantized()) {
		e.fail(fmt.Errorf("metal: a %v KV cache [%d,%d] that this executor did not make", c.Format, c.Rows, c.Cols))
		return nil, false
	}
	if row0 < 0 || n < 0 || row0+n > c.Rows || col < 0 || col >= c.Cols || (c.Format.Quantized() && col%c.Group != 0) {
		e.fail(fmt.Errorf("metal: rows %d..%d, column %d of a %v KV cache [%d,%d]", row0, row0+n, col, c.Format, c.Rows, c.Cols))
		return nil, false
	}
	first, end := row0*c.Cols+col, (row0+n)*c.Cols // values
	if c.Format == kernels.KVF16 {
		return []binding{{buf: b, off: 2 * first, n: 2 * (end - first)}}, true
	}
	per := 32 / c.Format.Bits()
	words, groups := c.Rows*c.Cols/per, c.Rows*c.Cols/c.Group
	scales, biases := 4*words, 4*words+2*groups
	return []binding{
		{buf: b, off: 4 * (first / per), n: 4 * (end - first) / per},
		{buf: b, off: scales + 2*(first/c.Group), n: 2 * (end - first) / c.Group},
		{buf: b, off: biases + 2*(first/c.Group), n: 2 * (end - first) / c.Group},
	}, true
}

// at returns b bound at index.
func at(index int, b binding) binding {
	b.index = index
	return b
}

// StoreKV converts n rows of src into rows row0.. of dst with one
// kv_store dispatch, src read through its row stride.
func (e *Executor) StoreKV(dst *graph.KV, row0 int, src *graph.Tensor, n int) {
	if n <= 0 || e.err != nil {
		return
	}
	if src.Cols < dst.Cols || n > src.Rows {
		e.fail(fmt.Errorf("metal: storing %d rows of a [%d,%d] tensor into a KV cache of %d columns", n, src.Rows, src.Cols, dst.Cols))
		return
	}
	d, ok := e.kvParts(dst, row0, n, 0)
	if !ok {
		return
	}
	p := e.upload(0, kvStoreParams{uint32(dst.Cols), uint32(src.RowStride())})
	if dst.Format == kernels.KVF16 {
		e.run("kv_store_f16", [3]int{ceilDiv(dst.Cols, elemThreads), n, 1}, [3]int{elemThreads, 1, 1},
			e.tensor(0, src, 0), at(1, d[0]), at(2, p))
		return
	}
	e.run(fmt.Sprintf("kv_store_q%d", dst.Format.Bits()), [3]int{ceilDiv(dst.Cols/dst.Group, kvStoreThreads), n, 1}, [3]int{kvStoreThreads, 1, 1},
		e.tensor(0, src, 0), at(1, d[0]), at(2, d[1]), at(3, d[2]), at(4, p), e.upload(5, uint32(dst.Group)))
}

// CopyKV copies the first n rows with the device's copy engine (one copy
// per part of the cache).
func (e *Executor) CopyKV(dst, src *graph.KV, n int) {
	if n <= 0 || e.err != nil {
		return
	}
	if dst.Format != src.Format || dst.Cols != src.Cols || dst.Group != src.Group {
		e.fail(fmt.Errorf("metal: copying %v KV rows of %d columns into a %v cache of %d", src.Format, src.Cols, dst.Format, dst.Cols))
		return
	}
	d, okD := e.kvParts(dst, 0, n, 0)
	s, okS := e.kvParts(src, 0, n, 0)
	if !okD || !okS {
		return
	}
	e.pending = true
	for i := range d {
		e.fail(e.dev.copy(d[i].buf, d[i].off, s[i].buf, s[i].off, s[i].n))
	}
}

// AttentionKV runs sdpa_f16 or sdpa_q8/q4 with each cache bound at its
// first column (kc0, vc0) and read through its row stride; shapes the
// kernels do not cover run on the host.
func (e *Executor) AttentionKV(out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	if n <= 0 {
		return
	}
	if !kvCovered(n, out, q, k, kc0, v, vc0, heads, kvHeads, dk, dv) {
		e.onHost("AttentionKV", func() {
			e.host.AttentionKV(out, q, k, kc0, v, vc0, n, pos0, heads, kvHeads, dk, dv, scale)
		})
		return
	}
	var a [10]binding
	args, ok := e.kvArgs(a[:0], out, q, k, kc0, v, vc0, pos0+n)
	if !ok {
		return
	}
	args = append(args, e.tensor(3, q, 0)) // gate: unused
	p := sdpaParams{uint32(pos0), uint32(heads), uint32(kvHeads), uint32(dk), uint32(dv),
		uint32(k.Cols), uint32(v.Cols), scale, 0}
	e.runSDPA("sdpa_"+k.Format.String(), n, p, args...)
}

// sdpaCovers reports whether the sdpa kernels cover an attention call's
// shape (head sizes, GQA grouping, q and out rows contiguous).
func sdpaCovers(n int, out, q *graph.Tensor, heads, kvHeads, dk, dv int) bool {
	return dk <= sdpaMaxDim && dv <= sdpaMaxDim && kvHeads > 0 && heads%kvHeads == 0 && contiguous(n, out, q)
}

// kvCovered is sdpaCovers for caches k and v read from columns kc0 and
// vc0: one format and group, quantized ones bound at a group's start.
func kvCovered(n int, out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, heads, kvHeads, dk, dv int) bool {
	return sdpaCovers(n, out, q, heads, kvHeads, dk, dv) && k.Format == v.Format && k.Group == v.Group &&
		!(k.Format.Quantized() && (kc0%k.Group != 0 || vc0%v.Group != 0))
}

// kvArgs appends the bindings of an sdpa kernel over compact caches to a:
// 0 q, 1 and 2 the caches' first rows positions from columns kc0 and vc0,
// 4 out, and for quantized caches 6-9 their scales and biases and 10 the
// group. ok is false (the error kept for Sync) when a cache is not this
// executor's or too short.
func (e *Executor) kvArgs(a []binding, out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, rows int) (args []binding, ok bool) {
	kp, okK := e.kvParts(k, 0, rows, kc0)
	vp, okV := e.kvParts(v, 0, rows, vc0)
	if !okK || !okV {
		return nil, false
	}
	a = append(a, e.tensor(0, q, 0), at(1, kp[0]), at(2, vp[0]), e.tensor(4, out, 0))
	if k.Format.Quantized() {
		a = append(a, at(6, kp[1]), at(7, kp[2]), at(8, vp[1]), at(9, vp[2]), e.upload(10, uint32(k.Group)))
	}
	return a, true
}
