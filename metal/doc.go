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
// A forward pass is encoded into one command buffer that Sync commits;
// each MoE layer splits it, because the pager resolves the router's choice
// on the CPU (see Executor.MoE). Ops without a kernel run on the CPU after
// a commit (see Executor.HostOps).
//
// Everything except the device (device.go's interface, implemented with
// cgo and darwinkit in device_darwin.go) builds on every platform and is
// tested on Linux with a device that runs the shaders on the CPU through
// kernels/mslharness. README.md says what has been verified on real
// hardware (nothing yet) and what has not.
package metal
