// LayerNorm with an affine weight and bias (torch.nn.LayerNorm, PhiMoE's
// norms). Launch: one threadgroup per row, threads (T,1,1) with T a
// multiple of 32 up to 1024 (256 is a good default); groups (rows,1,1).
#include <metal_stdlib>
using namespace metal;

struct LayerNormParams {
  uint dim;
  float eps;
  uint has_weight;  // 0: w is not read (weight 1)
  uint has_bias;    // 0: b is not read (bias 0)
};

// ln_sum returns the sum of v over the threadgroup to every thread.
// scratch holds one float per SIMD-group plus one; it is free again when
// ln_sum returns, so it can be called twice in a row.
inline float ln_sum(float v, threadgroup float* scratch, uint sg, uint lane, uint nsg) {
  v = simd_sum(v);
  if (lane == 0) scratch[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0) {
    float t = lane < nsg ? scratch[lane] : 0.0f;
    t = simd_sum(t);
    if (lane == 0) scratch[32] = t;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float r = scratch[32];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return r;
}

// layernorm: out = (x - mean) / sqrt(var + eps) * w + b per row of dim
// values, var the biased variance, computed in two passes over the row
// (the mean first, then the squared deviations) as kernels.LayerNorm does.
kernel void layernorm(device const float* x [[buffer(0)]],
                      device const float* w [[buffer(1)]],
                      device const float* b [[buffer(2)]],
                      device float* out [[buffer(3)]],
                      constant LayerNormParams& p [[buffer(4)]],
                      uint row [[threadgroup_position_in_grid]],
                      uint tid [[thread_index_in_threadgroup]],
                      uint nthreads [[threads_per_threadgroup]],
                      uint sg [[simdgroup_index_in_threadgroup]],
                      uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float scratch[33];
  device const float* xr = x + row * p.dim;
  device float* o = out + row * p.dim;
  uint nsg = (nthreads + 31) / 32;
  float s = 0;
  for (uint i = tid; i < p.dim; i += nthreads) s += xr[i];
  float mean = ln_sum(s, scratch, sg, lane, nsg) / float(p.dim);
  float ss = 0;
  for (uint i = tid; i < p.dim; i += nthreads) {
    float d = xr[i] - mean;
    ss += d * d;
  }
  float inv = precise::rsqrt(ln_sum(ss, scratch, sg, lane, nsg) / float(p.dim) + p.eps);
  for (uint i = tid; i < p.dim; i += nthreads) {
    float y = (xr[i] - mean) * inv;
    if (p.has_weight) y *= w[i];
    if (p.has_bias) y += b[i];
    o[i] = y;
  }
}
