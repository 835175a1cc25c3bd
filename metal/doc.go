// Package metal is the Metal executor for Apple silicon: it implements
// graph.Executor with the shaders of kernels/msl, on shared-storage buffers
// that the CPU and the GPU both address (Tensor.Data is the buffer's
// memory).
//
// Use New (it fails with "Metal is not available: ..." off macOS or without
// a device; fall back to the CPU executor then) and, for paged experts, give
// the pager the executor's SlotAllocator so the expert kernels read the
// slots in place; WorkingSetBytes is the memory budget on a Mac.
//
// A forward pass is encoded into a command buffer that Sync commits and
// waits for; a long encode is committed early every commitEvery dispatches
// (without waiting) so that the GPU starts on it.
// For a decode step whose experts are SlotExperts (the pager's slots under
// the exact policy) each MoE layer whose last decode resolve read nothing
// from disk stays inside it (so the GPU never waits on disk reads unless
// that prediction fails): the GPU signals an
// MTLSharedEvent after the router, the host (at commit, waiting on the event)
// reads the router's ids from shared memory and resolves them with the
// pager, then sets the event the expert kernels wait for; the kernels read
// the expert->slot table on the GPU. Other MoE layers (prefill batches, any
// other ExpertSet, the fast policy) commit and wait, resolve on the CPU and
// encode the experts after (see Executor.MoE). Ops without a kernel run on
// the CPU after a commit (see Executor.HostOps). An error (a failed command
// buffer, a pipeline Metal refused) fails the pass that the next Sync ends,
// not the executor.
//
// Everything except the device (device.go's interface, implemented with
// cgo and darwinkit in device_darwin.go) builds on every platform and is
// tested on Linux with a device that runs the shaders on the CPU through
// kernels/mslharness. README.md says what has been verified on real
// hardware (nothing yet) and what has not.
package metal
