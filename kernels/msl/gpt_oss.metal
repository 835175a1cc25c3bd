// gpt-oss's kernels: the MXFP4 matrix-vector product of its experts and
// their clamped SwiGLU (its attention with sinks and a sliding window is
// sdpa_sinks_* in attention.metal, beside the caches' readers).
#include <metal_stdlib>
using namespace metal;

struct MxParams {
  uint rows;
  uint cols;
};

// kE2M1 are the 16 MXFP4 (E2M1) code values.
constant constexpr float kE2M1[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                                      -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// qmv_mxfp4 is out[t, r] = Σ_c W[r, c]·x[t, c] for an MXFP4 matrix: w holds
// each row's codes, two to a byte (the even element in the low nibble),
// scales one E8M0 byte (2^(s-127)) per 32 values of a row. cols is a
// multiple of 32.
//
// Launch: threads (256,1,1), groups (ceil(rows/8), n, 1). SIMD-group sg
// computes row 8*group+sg for token tg.y; its lanes take the row's groups
// of 32 values lane, lane+32, ..., and simd_sum adds them.
kernel void qmv_mxfp4(device const uchar* w [[buffer(0)]],
                      device const uchar* scales [[buffer(1)]],
                      device const float* x [[buffer(2)]],
                      device float* out [[buffer(3)]],
                      constant MxParams& p [[buffer(4)]],
                      uint2 tg [[threadgroup_position_in_grid]],
                      uint sg [[simdgroup_index_in_threadgroup]],
                      uint lane [[thread_index_in_simdgroup]]) {
  uint r = tg.x * 8 + sg;
  if (r >= p.rows) return;
  uint groups = p.cols / 32;
  device const uchar* wr = w + r * (p.cols / 2);
  device const float* xt = x + tg.y * p.cols;
  float acc = 0;
  for (uint g = lane; g < groups; g += 32) {
    float s = 0;
    for (uint b = 0; b < 16; b++) {
      uchar c = wr[g * 16 + b];
      s += kE2M1[c & 15] * xt[g * 32 + 2 * b] + kE2M1[c >> 4] * xt[g * 32 + 2 * b + 1];
    }
    uchar e = scales[r * groups + g];
    float scale = e == 255 ? NAN : ldexp(1.0f, int(e) - 127);
    acc += scale * s;
  }
  acc = simd_sum(acc);
  if (lane == 0) out[tg.y * p.rows + r] = acc;
}

struct ClampParams {
  uint n;            // values of out: rows * inter
  uint inter;        // values per row of out
  uint interleaved;  // gate holds gate and up alternating, 2*inter a row
  float alpha;
  float limit;
};

// clamped_swiglu is kernels.ClampedSwiGLU (interleaved: ...Interleaved):
// out[i] = (u+1)·g·σ(alpha·g) with g = min(gate, limit) and u = up clamped
// to [-limit, limit]. Launch: threads (256,1,1), groups (ceil(n/256),1,1).
kernel void clamped_swiglu(device const float* gate [[buffer(0)]],
                           device const float* up [[buffer(1)]],
                           device float* out [[buffer(2)]],
                           constant ClampParams& p [[buffer(3)]],
                           uint i [[thread_position_in_grid]]) {
  if (i >= p.n) return;
  float g, u;
  if (p.interleaved) {
    uint r = i / p.inter, c = i % p.inter;
    g = gate[r * 2 * p.inter + 2 * c];
    u = gate[r * 2 * p.inter + 2 * c + 1];
  } else {
    g = gate[i];
    u = up[i];
  }
  g = min(g, p.limit);
  u = clamp(u, -p.limit, p.limit);
  out[i] = (u + 1.0f) * g / (1.0f + exp(-p.alpha * g));
}
