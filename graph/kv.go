package graph

import "github.com/mlx-moe/mlx-moe/kernels"

// KV is a KV cache an executor owns: one row per position, stored at half
// precision or quantized (kernels.KVRows); Dev is the executor's handle.
type KV struct {
	kernels.KVRows
	Dev any
}

// KVExecutor is an optional Executor capability: KV caches in a compact
// format that its attention reads directly. A model on an executor without
// it keeps float32 caches in plain Tensors.
type KVExecutor interface {
	// NewKV allocates a zeroed rows×cols cache (group: the quantization
	// group, see kernels.KVGroup).
	NewKV(rows, cols int, f kernels.KVFormat, group int) (*KV, error)
	// FreeKV releases a cache NewKV made.
	FreeKV(c *KV)
	// StoreKV converts the first n rows of src into rows row0.. of dst.
	StoreKV(dst *KV, row0 int, src *Tensor, n int)
	// CopyKV copies the first n rows of src into dst (same format and
	// width: snapshots).
	CopyKV(dst, src *KV, n int)
	// AttentionKV is Attention against caches in any format: kv head g's
	// key is at column kc0+g*dk of k, its value at column vc0+g*dv of v (v
	// may be k, as in latent attention).
	AttentionKV(out, q *Tensor, k *KV, kc0 int, v *KV, vc0 int, n, pos0, heads, kvHeads, dk, dv int, scale float32)
}
