// Deliberately wrong kernels: the harness must catch each of them
// (see planted_test.go). Each is a row-wise RMS normalisation like
// kernels/msl/norm.metal's rmsnorm (x [rows, dim] -> out, no weight), with
// one bug. Launch: threads (256,1,1), groups (rows,1,1); rms_uninitialized
// is launched with 128 threads.
#include <metal_stdlib>
using namespace metal;

// Divides by the sum of squares instead of their mean.
kernel void rms_wrong_math(device const float* x [[buffer(0)]],
                           device float* out [[buffer(1)]],
                           constant uint& dim [[buffer(2)]],
                           uint row [[threadgroup_position_in_grid]],
                           uint tid [[thread_index_in_threadgroup]],
                           uint sg [[simdgroup_index_in_threadgroup]],
                           uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part[8];
  device const float* xr = x + row * dim;
  float ss = 0;
  for (uint i = tid; i < dim; i += 256) ss += xr[i] * xr[i];
  ss = simd_sum(ss);
  if (lane == 0) part[sg] = ss;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float total = 0;
  for (uint s = 0; s < 8; s++) total += part[s];
  float inv = rsqrt(total + 1e-6f);  // BUG: total / dim
  for (uint i = tid; i < dim; i += 256) out[row * dim + i] = xr[i] * inv;
}

// Reads the partial sums before every SIMD-group has written its own.
kernel void rms_missing_barrier(device const float* x [[buffer(0)]],
                                device float* out [[buffer(1)]],
                                constant uint& dim [[buffer(2)]],
                                uint row [[threadgroup_position_in_grid]],
                                uint tid [[thread_index_in_threadgroup]],
                                uint sg [[simdgroup_index_in_threadgroup]],
                                uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part[8];
  device const float* xr = x + row * dim;
  float ss = 0;
  for (uint i = tid; i < dim; i += 256) ss += xr[i] * xr[i];
  ss = simd_sum(ss);
  if (lane == 0) part[sg] = ss;
  // BUG: no threadgroup_barrier here.
  float total = 0;
  for (uint s = 0; s < 8; s++) total += part[s];
  float inv = rsqrt(total / float(dim) + 1e-6f);
  for (uint i = tid; i < dim; i += 256) out[row * dim + i] = xr[i] * inv;
}

// Reads one element past the end of its row (and so of x for the last row).
kernel void rms_out_of_bounds(device const float* x [[buffer(0)]],
                              device float* out [[buffer(1)]],
                              constant uint& dim [[buffer(2)]],
                              uint row [[threadgroup_position_in_grid]],
                              uint tid [[thread_index_in_threadgroup]],
                              uint sg [[simdgroup_index_in_threadgroup]],
                              uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part[8];
  device const float* xr = x + row * dim;
  float ss = 0;
  for (uint i = tid; i <= dim; i += 256) ss += xr[i] * xr[i];  // BUG: i <= dim
  ss = simd_sum(ss);
  if (lane == 0) part[sg] = ss;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float total = 0;
  for (uint s = 0; s < 8; s++) total += part[s];
  float inv = rsqrt(total / float(dim) + 1e-6f);
  for (uint i = tid; i < dim; i += 256) out[row * dim + i] = xr[i] * inv;
}

// Only half of the threads reach the barrier.
kernel void rms_divergent_barrier(device const float* x [[buffer(0)]],
                                  device float* out [[buffer(1)]],
                                  constant uint& dim [[buffer(2)]],
                                  uint row [[threadgroup_position_in_grid]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint sg [[simdgroup_index_in_threadgroup]],
                                  uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part[8];
  device const float* xr = x + row * dim;
  float ss = 0;
  for (uint i = tid; i < dim; i += 256) ss += xr[i] * xr[i];
  ss = simd_sum(ss);
  if (lane == 0) part[sg] = ss;
  if (tid < 128) threadgroup_barrier(mem_flags::mem_threadgroup);  // BUG: divergent barrier
  float total = 0;
  for (uint s = 0; s < 8; s++) total += part[s];
  float inv = rsqrt(total / float(dim) + 1e-6f);
  for (uint i = tid; i < dim; i += 256) out[row * dim + i] = xr[i] * inv;
}

// Assumes 8 SIMD-groups: launched with fewer, it sums partials nobody wrote.
kernel void rms_uninitialized(device const float* x [[buffer(0)]],
                              device float* out [[buffer(1)]],
                              constant uint& dim [[buffer(2)]],
                              uint row [[threadgroup_position_in_grid]],
                              uint tid [[thread_index_in_threadgroup]],
                              uint nthreads [[threads_per_threadgroup]],
                              uint sg [[simdgroup_index_in_threadgroup]],
                              uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part[8];
  device const float* xr = x + row * dim;
  float ss = 0;
  for (uint i = tid; i < dim; i += nthreads) ss += xr[i] * xr[i];
  ss = simd_sum(ss);
  if (lane == 0) part[sg] = ss;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float total = 0;
  for (uint s = 0; s < 8; s++) total += part[s];  // BUG: nthreads/32 partials
  float inv = rsqrt(total / float(dim) + 1e-6f);
  for (uint i = tid; i < dim; i += nthreads) out[row * dim + i] = xr[i] * inv;
}

// Never returns: the harness must give up after Timeout and kill the runner.
kernel void spin_forever(device uint* flag [[buffer(0)]],
                         uint tid [[thread_index_in_threadgroup]]) {
  volatile device uint* f = flag;
  while (f[tid] == 0) {
  }
}

// Assumes threadgroups run one after another: threadgroup 1 reads what
// threadgroup 0 writes at its end. out[1] is 43 only if threadgroup 0 has
// finished before threadgroup 1 starts, which Metal does not promise.
// Launch: groups (2,1,1), threads (64,1,1), out [2] zeroed.
kernel void cross_group_order(device float* out [[buffer(0)]],
                              uint g [[threadgroup_position_in_grid]],
                              uint tid [[thread_index_in_threadgroup]]) {
  float seen = g == 1 && tid == 0 ? out[0] : 0.0f;
  threadgroup_barrier(mem_flags::mem_none);
  threadgroup_barrier(mem_flags::mem_none);
  if (tid == 0) out[g] = g == 0 ? 42.0f : seen + 1.0f;
}
