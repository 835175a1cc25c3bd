// Normalisation kernels. Launch: one threadgroup per row, threads (T,1,1)
// with T a multiple of 32 up to 1024 (256 is a good default); groups
// (rows,1,1).
#include <metal_stdlib>
using namespace metal;

struct NormParams {
  uint dim;
  float eps;
  uint has_weight;  // 0: no weight (w is not read)
};

// threadgroup_sum returns the sum of v over the threadgroup to every thread.
// scratch holds one float per SIMD-group plus one.
inline float threadgroup_sum(float v, threadgroup float* scratch, uint sg, uint lane, uint nsg) {
  v = simd_sum(v);
  if (lane == 0) scratch[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0) {
    float t = lane < nsg ? scratch[lane] : 0.0f;
    t = simd_sum(t);
    if (lane == 0) scratch[32] = t;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return scratch[32];
}

// rms_scale returns 1/sqrt(mean(x²)+eps) for one row.
inline float rms_scale(device const float* x, uint dim, float eps, threadgroup float* scratch, uint tid,
                       uint nthreads, uint sg, uint lane) {
  float ss = 0;
  for (uint i = tid; i < dim; i += nthreads) ss += x[i] * x[i];
  float total = threadgroup_sum(ss, scratch, sg, lane, (nthreads + 31) / 32);
  return precise::rsqrt(total / float(dim) + eps);
}

// rmsnorm: out = x / rms(x) * w per row of dim values.
kernel void rmsnorm(device const float* x [[buffer(0)]],
                    device const float* w [[buffer(1)]],
                    device float* out [[buffer(2)]],
                    constant NormParams& p [[buffer(3)]],
                    uint row [[threadgroup_position_in_grid]],
                    uint tid [[thread_index_in_threadgroup]],
                    uint nthreads [[threads_per_threadgroup]],
                    uint sg [[simdgroup_index_in_threadgroup]],
                    uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float scratch[33];
  device const float* xr = x + row * p.dim;
  device float* o = out + row * p.dim;
  float inv = rms_scale(xr, p.dim, p.eps, scratch, tid, nthreads, sg, lane);
  for (uint i = tid; i < p.dim; i += nthreads) o[i] = p.has_weight ? xr[i] * inv * w[i] : xr[i] * inv;
}

// rmsnorm_gated (Qwen3-Next's delta-rule output norm):
// out = x / rms(x) * w * silu(z) per row.
kernel void rmsnorm_gated(device const float* x [[buffer(0)]],
                          device const float* z [[buffer(1)]],
                          device const float* w [[buffer(2)]],
                          device float* out [[buffer(3)]],
                          constant NormParams& p [[buffer(4)]],
                          uint row [[threadgroup_position_in_grid]],
                          uint tid [[thread_index_in_threadgroup]],
                          uint nthreads [[threads_per_threadgroup]],
                          uint sg [[simdgroup_index_in_threadgroup]],
                          uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float scratch[33];
  device const float* xr = x + row * p.dim;
  device const float* zr = z + row * p.dim;
  device float* o = out + row * p.dim;
  float inv = rms_scale(xr, p.dim, p.eps, scratch, tid, nthreads, sg, lane);
  for (uint i = tid; i < p.dim; i += nthreads) {
    float g = zr[i];
    o[i] = xr[i] * inv * w[i] * (g / (1.0f + exp(-g)));
  }
}
