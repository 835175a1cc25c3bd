package cpu

import (
	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

var _ graph.KVExecutor = (*Executor)(nil)

// NewKV allocates a KV cache on the Go heap.
func (*Executor) NewKV(rows, cols int, f kernels.KVFormat, group int) (*graph.KV, error) {
	r, err := kernels.NewKVRows(f, rows, cols, group)
	if err != nil {
		return nil, err
	}
	return &graph.KV{KVRows: *r}, nil
}

// FreeKV drops the cache's storage.
func (*Executor) FreeKV(c *graph.KV) { c.KVRows = kernels.KVRows{} }

func (ex *Executor) StoreKV(dst *graph.KV, row0 int, src *graph.Tensor, n int) {
	dst.Store(row0, src.Data, src.RowStride(), n)
}

func (*Executor) CopyKV(dst, src *graph.KV, n int) { dst.CopyRows(&src.KVRows, n) }

func (ex *Executor) AttentionKV(out, q *graph.Tensor, k *graph.KV, kc0 int, v *graph.KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32) {
	o := ex.target(1, out, n, 0, out.Cols)
	kernels.AttentionKV(o, ex.dense(0, q, n, 0, q.Cols), &k.KVRows, kc0, &v.KVRows, vc0, n, pos0, heads, kvHeads, dk, dv, scale)
	store(out, n, 0, out.Cols, o)
}
