// Planted: a threadgroup variable in a helper function, which Metal
// rejects (threadgroup variables belong to a kernel function's scope).
// Build must reject it.
#include <metal_stdlib>
using namespace metal;

float stage(float v, uint tid) {
  threadgroup float scratch[64];
  scratch[tid] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return scratch[63 - tid];
}

kernel void helper_threadgroup(device float* out [[buffer(0)]],
                               uint tid [[thread_index_in_threadgroup]]) {
  out[tid] = stage(float(tid), tid);
}
