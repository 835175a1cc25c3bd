// Package graph is the contract between model code and the devices that run
// it. Model code writes a forward pass as a sequence of ops on Tensors that
// an Executor owns; it never asks which device it runs on and never reads an
// intermediate value back. The only places where the host looks at device
// values are the expert handoff inside MoE (the pager resolves the routed
// ids) and Read, used by the sampler on the final logits.
//
// The CPU executor (package cpu) runs each op as it is issued. A GPU
// executor encodes ops into a command buffer and submits at Sync, so a whole
// token can be one submission.
//
// Tensors are 2-D, [Rows, Cols] row-major float32: rows are tokens, columns
// features; per-head ops take the head size explicitly. A tensor may be a
// view (Tensor.View) of a block of rows and columns of another, with the
// parent's row stride: a KV cache's new rows, the latent columns of a cache
// row, one part of a wider projection. Ops read and write views in place, so
// model code never copies heads. A model's runner allocates every scratch
// tensor once, for its largest batch, when it is made (its buffer plan), and
// runs smaller batches on the first rows of them; caches are freed with
// Executor.Free.
//
// # Adding a device
//
// A device is a package with a type that implements Executor:
//
//  1. NewTensor and Free own the device's buffers; Read returns a host view
//     after the issued ops are done; Sync waits for them.
//  2. Every op honours Tensor.RowStride: a strided view with more than one
//     row may run one row per launch, or on the host, but must not be read
//     as if it were contiguous. A single row of a view is always contiguous.
//  3. Each op computes what the CPU executor (package cpu, over the kernels
//     package's reference kernels) computes; test it against that executor
//     on the fixtures (metal's compare_test.go is the pattern).
//  4. MoE receives an ExpertSet: call Resolve with the distinct routed ids
//     (at most MaxResolve at a time) before using Expert.
//
// Optional methods the library uses when a device has them (mlxmoe's
// capabilities.go): SlotAllocator (expert slot pools in device buffers),
// WorkingSetBytes (a device memory budget), Immediate (ops run as issued,
// so host reads mid-pass are free), HostOps (ops that fell back to the
// host) and MemoryReporter (the memory of its live buffers, by use, which
// `mlx-moe generate --verbose` prints). Then add the device's name to
// mlxmoe.NewExecutor.
package graph
