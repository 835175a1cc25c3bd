// gpt-oss's kernels: attention with sinks and a sliding window, and the
// MXFP4 matrix-vector product of its experts.
#include <metal_stdlib>
using namespace metal;

constant constexpr uint kSinkSimdgroups = 8;
constant constexpr uint kSinkMaxDim = 256;
constant constexpr uint kSinkPerLane = kSinkMaxDim / 32;

struct SinkParams {
  uint pos0;
  uint heads;
  uint kv_heads;
  uint dk;
  uint dv;
  uint k_stride;
  uint v_stride;
  float scale;
  uint window;  // 0: every earlier position
};

// sdpa_sinks_f32 is kernels.AttentionSinks over float32 caches: q [n,
// heads, dk], the key of position j, kv head g at k[j*k_stride + g*dk]
// (values likewise), out [n, heads, dv]; token t at position pos0+t sees
// positions max(0, pos0+t-window+1)..pos0+t (all of them with window 0),
// and head h's softmax denominator also holds exp(sinks[h]). dk, dv <= 256.
//
// Launch: threads (256,1,1), groups (heads,n,1). Each of the 8 SIMD-groups
// runs an online softmax over positions first+sg, first+sg+8, ...; a lane
// holds dims lane, lane+32, ... The partial results merge through
// threadgroup memory, and the sink joins the merged sum last.
kernel void sdpa_sinks_f32(device const float* q [[buffer(0)]],
                           device const float* k [[buffer(1)]],
                           device const float* v [[buffer(2)]],
                           device const float* sinks [[buffer(3)]],
                           device float* out [[buffer(4)]],
                           constant SinkParams& p [[buffer(5)]],
                           uint2 tg [[threadgroup_position_in_grid]],
                           uint tid [[thread_index_in_threadgroup]],
                           uint sg [[simdgroup_index_in_threadgroup]],
                           uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part_m[kSinkSimdgroups];
  threadgroup float part_l[kSinkSimdgroups];
  threadgroup float part_o[kSinkSimdgroups][kSinkMaxDim];
  uint h = tg.x, row = tg.y * p.heads + h;
  uint pos = p.pos0 + tg.y;
  uint first = (p.window > 0 && pos + 1 > p.window) ? pos + 1 - p.window : 0;
  uint g = h / (p.heads / p.kv_heads);
  float qv[kSinkPerLane], o[kSinkPerLane];
  for (uint m = 0; m < kSinkPerLane; m++) {
    uint d = lane + 32 * m;
    qv[m] = d < p.dk ? q[row * p.dk + d] * p.scale : 0.0f;
    o[m] = 0;
  }
  float run_max = -INFINITY, run_sum = 0;
  for (uint j = first + sg; j <= pos; j += kSinkSimdgroups) {
    float s = 0;
    for (uint m = 0; m < kSinkPerLane; m++) {
      uint d = lane + 32 * m;
      if (d < p.dk) s += qv[m] * k[j * p.k_stride + g * p.dk + d];
    }
    s = simd_sum(s);
    float new_max = max(run_max, s);
    float corr = exp(run_max - new_max), w = exp(s - new_max);
    run_sum = run_sum * corr + w;
    for (uint m = 0; m < kSinkPerLane; m++) {
      uint d = lane + 32 * m;
      if (d < p.dv) o[m] = o[m] * corr + w * v[j * p.v_stride + g * p.dv + d];
    }
    run_max = new_max;
  }
  if (lane == 0) {
    part_m[sg] = run_max;
    part_l[sg] = run_sum;
  }
  for (uint m = 0; m < kSinkPerLane; m++) {
    uint d = lane + 32 * m;
    if (d < p.dv) part_o[sg][d] = o[m];
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // Merge: thread tid finishes output dim tid; the sink is one more logit
  // with no value.
  if (tid < p.dv) {
    float m = sinks[h];
    for (uint s = 0; s < kSinkSimdgroups; s++) m = max(m, part_m[s]);
    float l = exp(sinks[h] - m), acc = 0;
    for (uint s = 0; s < kSinkSimdgroups; s++) {
      if (part_l[s] == 0) continue;  // a SIMD-group that saw no position
      float c = exp(part_m[s] - m);
      l += part_l[s] * c;
      acc += part_o[s][tid] * c;
    }
    out[row * p.dv + tid] = acc / l;
  }
}

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
