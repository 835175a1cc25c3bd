// Planted: a kernel that declares more threadgroup memory than Metal's
// 32 KiB (two arrays of 4100 floats: 32,800 bytes). Build must reject it.
#include <metal_stdlib>
using namespace metal;

kernel void too_large(device float* out [[buffer(0)]],
                      uint tid [[thread_index_in_threadgroup]]) {
  threadgroup float a[4100];
  threadgroup float b[4100];
  a[tid] = float(tid);
  b[tid] = 1.0f;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[tid] = a[tid] + b[4099 - tid];
}
