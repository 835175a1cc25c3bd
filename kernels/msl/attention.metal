// Causal scaled-dot-product attention of n tokens against a KV cache
// (decoding is n = 1).
//
// q [n, heads, dk]; token t sits at position pos0+t and attends to positions
// 0..pos0+t, which the cache already holds. The caches have row strides
// k_stride and v_stride (values per position; kv_heads*dk and kv_heads*dv
// when packed): the key of position j, kv head g is at k[j*k_stride + g*dk].
// Query head h reads kv head h / (heads/kv_heads) (GQA). out [n, heads, dv];
// with has_gate, out is multiplied by sigmoid(gate) [n, heads, dv]
// (Qwen3-Next's output gate). dk and dv are at most 256.
//
// Launch: threads (256,1,1), groups (heads,n,1). Each of the 8 SIMD-groups
// runs an online softmax over positions j = sg, sg+8, ...; a lane holds the
// dims lane, lane+32, ... of q and of its output accumulator. The 8 partial
// results are merged through threadgroup memory.
#include <metal_stdlib>
using namespace metal;

constant constexpr uint kSimdgroups = 8;
constant constexpr uint kMaxDim = 256;
constant constexpr uint kPerLane = kMaxDim / 32;

struct SdpaParams {
  uint pos0;
  uint heads;
  uint kv_heads;
  uint dk;
  uint dv;
  uint k_stride;
  uint v_stride;
  float scale;
  uint has_gate;
};

// DenseRows reads a float or half cache: value i of position j.
template <typename T>
struct DenseRows {
  device const T* x;
  uint stride;
  float at(uint j, uint i) const { return float(x[j * stride + i]); }
};

// sdpa_rows is the body of every sdpa kernel: K and V read the caches (any
// type with at(position, index)); the partial results go through the
// kernel's threadgroup arrays.
template <typename K, typename V>
inline void sdpa_rows(device const float* q, K k, V v, device const float* gate, device float* out,
                      constant SdpaParams& p, uint2 tg, uint tid, uint sg, uint lane,
                      threadgroup float* part_m, threadgroup float* part_l,
                      threadgroup float (*part_o)[kMaxDim]) {
  uint h = tg.x, row = tg.y * p.heads + h;  // row of q, out and gate
  uint len = p.pos0 + tg.y + 1;
  uint g = h / (p.heads / p.kv_heads);
  float qv[kPerLane], o[kPerLane];
  for (uint m = 0; m < kPerLane; m++) {
    uint d = lane + 32 * m;
    qv[m] = d < p.dk ? q[row * p.dk + d] * p.scale : 0.0f;
    o[m] = 0;
  }
  float run_max = -INFINITY, run_sum = 0;
  for (uint j = sg; j < len; j += kSimdgroups) {
    float s = 0;
    for (uint m = 0; m < kPerLane; m++) {
      uint d = lane + 32 * m;
      if (d < p.dk) s += qv[m] * k.at(j, g * p.dk + d);
    }
    s = simd_sum(s);
    float new_max = max(run_max, s);
    float corr = exp(run_max - new_max), w = exp(s - new_max);
    run_sum = run_sum * corr + w;
    for (uint m = 0; m < kPerLane; m++) {
      uint d = lane + 32 * m;
      if (d < p.dv) o[m] = o[m] * corr + w * v.at(j, g * p.dv + d);
    }
    run_max = new_max;
  }
  if (lane == 0) {
    part_m[sg] = run_max;
    part_l[sg] = run_sum;
  }
  for (uint m = 0; m < kPerLane; m++) {
    uint d = lane + 32 * m;
    if (d < p.dv) part_o[sg][d] = o[m];
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // Merge: thread tid finishes output dim tid.
  if (tid < p.dv) {
    float m = -INFINITY;
    for (uint s = 0; s < kSimdgroups; s++) m = max(m, part_m[s]);
    float l = 0, acc = 0;
    for (uint s = 0; s < kSimdgroups; s++) {
      if (part_l[s] == 0) continue;  // a SIMD-group that saw no position
      float c = exp(part_m[s] - m);
      l += part_l[s] * c;
      acc += part_o[s][tid] * c;
    }
    float r = acc / l;
    if (p.has_gate) r *= 1.0f / (1.0f + exp(-gate[row * p.dv + tid]));
    out[row * p.dv + tid] = r;
  }
}

// QuantRows reads an affine-quantized cache (kernels.KVRows, KVQ8/KVQ4):
// Bits-bit codes packed LSB first in words, a half scale and bias per group
// of a row's values; value = scale*code + bias. stride is in values.
template <uint Bits>
struct QuantRows {
  device const uint* q;
  device const half* scales;
  device const half* biases;
  uint stride, group;
  float at(uint j, uint i) const {
    uint e = j * stride + i, per = 32 / Bits;
    uint code = (q[e / per] >> ((e % per) * Bits)) & ((1u << Bits) - 1);
    return float(scales[e / group]) * float(code) + float(biases[e / group]);
  }
};

template <typename T>
kernel void sdpa(device const float* q [[buffer(0)]],
                 device const T* k [[buffer(1)]],
                 device const T* v [[buffer(2)]],
                 device const float* gate [[buffer(3)]],
                 device float* out [[buffer(4)]],
                 constant SdpaParams& p [[buffer(5)]],
                 uint2 tg [[threadgroup_position_in_grid]],
                 uint tid [[thread_index_in_threadgroup]],
                 uint sg [[simdgroup_index_in_threadgroup]],
                 uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part_m[kSimdgroups];
  threadgroup float part_l[kSimdgroups];
  threadgroup float part_o[kSimdgroups][kMaxDim];
  sdpa_rows(q, DenseRows<T>{k, p.k_stride}, DenseRows<T>{v, p.v_stride}, gate, out, p, tg, tid, sg, lane,
            part_m, part_l, part_o);
}

template [[host_name("sdpa_f32")]] [[kernel]] decltype(sdpa<float>) sdpa<float>;
template [[host_name("sdpa_f16")]] [[kernel]] decltype(sdpa<half>) sdpa<half>;

// Stores n rows of float32 values into a half-precision KV cache (what
// sdpa_f16 reads): src row t is cols values at src[t*ld], it becomes dst row
// t (row stride cols). The executor binds dst at the first row to write.
//
// Launch: threads (256,1,1), groups (ceil(cols/256), n, 1); one thread per
// value.
struct KVStoreParams {
  uint cols;
  uint ld;
};

kernel void kv_store_f16(device const float* src [[buffer(0)]],
                         device half* dst [[buffer(1)]],
                         constant KVStoreParams& p [[buffer(2)]],
                         uint2 gid [[thread_position_in_grid]]) {
  if (gid.x >= p.cols) return;
  dst[gid.y * p.cols + gid.x] = half(src[gid.y * p.ld + gid.x]);
}

// The same over quantized caches: each cache is its codes, scales and
// biases, bound at the first value to read (a multiple of the group).
// Launch as sdpa.
template <uint Bits>
kernel void sdpa_q(device const float* q [[buffer(0)]],
                   device const uint* kq [[buffer(1)]],
                   device const uint* vq [[buffer(2)]],
                   device const float* gate [[buffer(3)]],
                   device float* out [[buffer(4)]],
                   constant SdpaParams& p [[buffer(5)]],
                   device const half* k_scales [[buffer(6)]],
                   device const half* k_biases [[buffer(7)]],
                   device const half* v_scales [[buffer(8)]],
                   device const half* v_biases [[buffer(9)]],
                   constant uint& group [[buffer(10)]],
                   uint2 tg [[threadgroup_position_in_grid]],
                   uint tid [[thread_index_in_threadgroup]],
                   uint sg [[simdgroup_index_in_threadgroup]],
                   uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part_m[kSimdgroups];
  threadgroup float part_l[kSimdgroups];
  threadgroup float part_o[kSimdgroups][kMaxDim];
  sdpa_rows(q, QuantRows<Bits>{kq, k_scales, k_biases, p.k_stride, group},
            QuantRows<Bits>{vq, v_scales, v_biases, p.v_stride, group}, gate, out, p, tg, tid, sg, lane, part_m,
            part_l, part_o);
}

template [[host_name("sdpa_q8")]] [[kernel]] decltype(sdpa_q<8>) sdpa_q<8>;
template [[host_name("sdpa_q4")]] [[kernel]] decltype(sdpa_q<4>) sdpa_q<4>;

// Quantizes n rows of float32 values into an affine-quantized KV cache,
// exactly as kernels.KVRows.Store: per group the value of largest
// magnitude is the bias (code 0), the step reaches the other edge (one
// half ulp wider when half rounding made it short), codes round to
// nearest. src row t is at src[t*ld]; q, scales and biases are bound at
// the first row to write.
//
// Launch: threads (64,1,1), groups (ceil(cols/group/64), n, 1); one thread
// per group of a row (a group is whole words, so no two threads share one).
template <uint Bits>
kernel void kv_store_q(device const float* src [[buffer(0)]],
                       device uint* q [[buffer(1)]],
                       device half* scales [[buffer(2)]],
                       device half* biases [[buffer(3)]],
                       constant KVStoreParams& p [[buffer(4)]],
                       constant uint& group [[buffer(5)]],
                       uint2 gid [[thread_position_in_grid]]) {
  uint groups = p.cols / group;
  if (gid.x >= groups) return;
  device const float* in = src + gid.y * p.ld + gid.x * group;
  float lo = in[0], hi = in[0];
  for (uint i = 1; i < group; i++) {
    lo = min(lo, in[i]);
    hi = max(hi, in[i]);
  }
  float edge = hi, far = lo;
  if (fabs(lo) > fabs(hi)) {
    edge = lo;
    far = hi;
  }
  const float bins = float((1u << Bits) - 1);
  uint gi = gid.y * groups + gid.x;
  half b16 = half(edge);
  float bias = float(b16);
  half s16 = half((far - bias) / bins);
  float s = float(s16);
  if (s != 0 && (far - bias) / s > bins) {
    s16 = as_type<half>(ushort(as_type<ushort>(s16) + 1));  // one ulp more magnitude
    s = float(s16);
  }
  biases[gi] = b16;
  scales[gi] = s16;
  float inv = s != 0 ? 1.0f / s : 0.0f;
  const uint per = 32 / Bits;
  device uint* words = q + (gid.y * p.cols + gid.x * group) / per;
  for (uint w = 0; w < group / per; w++) {
    uint word = 0;
    for (uint k = 0; k < per; k++) {
      float c = clamp(round((in[w * per + k] - bias) * inv), 0.0f, bins);
      word |= uint(c) << (k * Bits);
    }
    words[w] = word;
  }
}

template [[host_name("kv_store_q8")]] [[kernel]] decltype(kv_store_q<8>) kv_store_q<8>;
template [[host_name("kv_store_q4")]] [[kernel]] decltype(kv_store_q<4>) kv_store_q<4>;

