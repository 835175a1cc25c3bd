// Kernels that exercise kernels/msl/compat itself (see compat_test.go):
// the 16-bit conversions and the SIMD-group functions.
#include <metal_stdlib>
using namespace metal;

// convert writes the half and bfloat bit patterns of x[i].
kernel void convert(device const float* x [[buffer(0)]],
                    device ushort* h [[buffer(1)]],
                    device ushort* b [[buffer(2)]],
                    constant uint& n [[buffer(3)]],
                    uint i [[thread_position_in_grid]]) {
  if (i >= n) return;
  h[i] = as_type<ushort>(half(x[i]));
  b[i] = as_type<ushort>(bfloat(x[i]));
}

// simd_ops writes, per thread, eleven SIMD-group results for value x[tid].
kernel void simd_ops(device const float* x [[buffer(0)]],
                     device float* out [[buffer(1)]],
                     uint tid [[thread_index_in_threadgroup]]) {
  float v = x[tid];
  device float* o = out + tid * 11;
  o[0] = simd_sum(v);
  o[1] = simd_max(v);
  o[2] = simd_min(v);
  o[3] = simd_prefix_exclusive_sum(v);
  o[4] = simd_shuffle_down(v, 3);
  o[5] = simd_shuffle_xor(v, 5);
  o[6] = simd_broadcast(v, 7);
  o[7] = simd_prefix_inclusive_sum(v);
  o[8] = simd_shuffle_up(v, 2);
  o[9] = simd_product(v > 0 ? 2.0f : 1.0f);
  simdgroup_barrier(mem_flags::mem_threadgroup);
  o[10] = float(simd_any(v == 11.0f)) + 2.0f * float(simd_all(v > -12.0f));
}
