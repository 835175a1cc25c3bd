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
//
// Split-K (flash decoding) for long caches, where heads*n threadgroups
// would leave most of the GPU idle: sdpa_split_* (the same buffers as
// sdpa_*, plus 11: SplitParams, 12: partial outputs, 13: partial max and
// sum) runs threadgroup (h, t, s) over positions [s*chunk, (s+1)*chunk)
// only, groups (heads, n, splits), and stores its unnormalised result;
// sdpa_merge then combines the splits of each row, groups (heads, n, 1),
// threads (256,1,1).
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

// sdpa_span is the body of every sdpa kernel: the online softmax of query
// row (token tg.y, head tg.x) over positions [j0, j1) by the threadgroup's
// SIMD-groups, merged through the kernel's threadgroup arrays. Thread
// tid < dv gets m (the largest score), l (the sum of exp(score - m)) and
// acc (the sum of exp(score - m) * v[tid]); l is 0 for an empty span. K and
// V read the caches (any type with at(position, index)).
template <typename K, typename V>
inline void sdpa_span(device const float* q, K k, V v, constant SdpaParams& p, uint2 tg, uint j0, uint j1,
                      uint tid, uint sg, uint lane, threadgroup float* part_m, threadgroup float* part_l,
                      threadgroup float (*part_o)[kMaxDim], thread float& m, thread float& l, thread float& acc) {
  uint h = tg.x, row = tg.y * p.heads + h;  // row of q, out and gate
  uint g = h / (p.heads / p.kv_heads);
  float qv[kPerLane], o[kPerLane];
  for (uint i = 0; i < kPerLane; i++) {
    uint d = lane + 32 * i;
    qv[i] = d < p.dk ? q[row * p.dk + d] * p.scale : 0.0f;
    o[i] = 0;
  }
  float run_max = -INFINITY, run_sum = 0;
  for (uint j = j0 + sg; j < j1; j += kSimdgroups) {
    float s = 0;
    for (uint i = 0; i < kPerLane; i++) {
      uint d = lane + 32 * i;
      if (d < p.dk) s += qv[i] * k.at(j, g * p.dk + d);
    }
    s = simd_sum(s);
    float new_max = max(run_max, s);
    float corr = exp(run_max - new_max), w = exp(s - new_max);
    run_sum = run_sum * corr + w;
    for (uint i = 0; i < kPerLane; i++) {
      uint d = lane + 32 * i;
      if (d < p.dv) o[i] = o[i] * corr + w * v.at(j, g * p.dv + d);
    }
    run_max = new_max;
  }
  if (lane == 0) {
    part_m[sg] = run_max;
    part_l[sg] = run_sum;
  }
  for (uint i = 0; i < kPerLane; i++) {
    uint d = lane + 32 * i;
    if (d < p.dv) part_o[sg][d] = o[i];
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // Merge: thread tid finishes output dim tid.
  m = -INFINITY;
  l = 0;
  acc = 0;
  if (tid < p.dv) {
    for (uint s = 0; s < kSimdgroups; s++) m = max(m, part_m[s]);
    for (uint s = 0; s < kSimdgroups; s++) {
      if (part_l[s] == 0) continue;  // a SIMD-group that saw no position
      float c = exp(part_m[s] - m);
      l += part_l[s] * c;
      acc += part_o[s][tid] * c;
    }
  }
}

// sdpa_rows attends over every position of the row's token and writes the
// normalised, optionally gated, output.
template <typename K, typename V>
inline void sdpa_rows(device const float* q, K k, V v, device const float* gate, device float* out,
                      constant SdpaParams& p, uint2 tg, uint tid, uint sg, uint lane,
                      threadgroup float* part_m, threadgroup float* part_l,
                      threadgroup float (*part_o)[kMaxDim]) {
  uint row = tg.y * p.heads + tg.x;
  float m, l, acc;
  sdpa_span(q, k, v, p, tg, 0, p.pos0 + tg.y + 1, tid, sg, lane, part_m, part_l, part_o, m, l, acc);
  if (tid < p.dv) {
    float r = acc / l;
    if (p.has_gate) r *= 1.0f / (1.0f + exp(-gate[row * p.dv + tid]));
    out[row * p.dv + tid] = r;
  }
}

struct SplitParams {
  uint chunk;   // positions per split
  uint splits;  // splits per row
};

// sdpa_split_rows is split tg.z's part of row (tg.y, tg.x): its span's m,
// l and acc go to part_ml[(row*splits + split)*2 + {0, 1}] and
// part_o[(row*splits + split)*dv + d].
template <typename K, typename V>
inline void sdpa_split_rows(device const float* q, K k, V v, constant SdpaParams& p, constant SplitParams& sp,
                            device float* out_o, device float* out_ml, uint3 tg, uint tid, uint sg, uint lane,
                            threadgroup float* part_m, threadgroup float* part_l,
                            threadgroup float (*part_o)[kMaxDim]) {
  uint len = p.pos0 + tg.y + 1, j0 = min(len, tg.z * sp.chunk), j1 = min(len, j0 + sp.chunk);
  float m, l, acc;
  sdpa_span(q, k, v, p, uint2(tg.x, tg.y), j0, j1, tid, sg, lane, part_m, part_l, part_o, m, l, acc);
  uint at = (tg.y * p.heads + tg.x) * sp.splits + tg.z;
  if (tid < p.dv) out_o[at * p.dv + tid] = acc;
  if (tid == 0) {
    out_ml[at * 2] = m;
    out_ml[at * 2 + 1] = l;
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

template <typename T>
kernel void sdpa_split(device const float* q [[buffer(0)]],
                       device const T* k [[buffer(1)]],
                       device const T* v [[buffer(2)]],
                       constant SdpaParams& p [[buffer(5)]],
                       constant SplitParams& sp [[buffer(11)]],
                       device float* out_o [[buffer(12)]],
                       device float* out_ml [[buffer(13)]],
                       uint3 tg [[threadgroup_position_in_grid]],
                       uint tid [[thread_index_in_threadgroup]],
                       uint sg [[simdgroup_index_in_threadgroup]],
                       uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part_m[kSimdgroups];
  threadgroup float part_l[kSimdgroups];
  threadgroup float part_o[kSimdgroups][kMaxDim];
  sdpa_split_rows(q, DenseRows<T>{k, p.k_stride}, DenseRows<T>{v, p.v_stride}, p, sp, out_o, out_ml, tg, tid, sg,
                  lane, part_m, part_l, part_o);
}

template [[host_name("sdpa_split_f32")]] [[kernel]] decltype(sdpa_split<float>) sdpa_split<float>;
template [[host_name("sdpa_split_f16")]] [[kernel]] decltype(sdpa_split<half>) sdpa_split<half>;

// sdpa_merge combines the splits of each row (see sdpa_split_rows) into the
// normalised, optionally gated, output: thread d < dv of group (h, t).
struct MergeParams {
  uint heads;
  uint dv;
  uint splits;
  uint has_gate;
};

kernel void sdpa_merge(device const float* part_o [[buffer(0)]],
                       device const float* part_ml [[buffer(1)]],
                       device const float* gate [[buffer(2)]],
                       device float* out [[buffer(3)]],
                       constant MergeParams& p [[buffer(4)]],
                       uint2 tg [[threadgroup_position_in_grid]],
                       uint tid [[thread_index_in_threadgroup]]) {
  if (tid >= p.dv) return;
  uint row = tg.y * p.heads + tg.x, base = row * p.splits;
  float m = -INFINITY;
  for (uint s = 0; s < p.splits; s++)
    if (part_ml[(base + s) * 2 + 1] != 0) m = max(m, part_ml[(base + s) * 2]);
  float l = 0, acc = 0;
  for (uint s = 0; s < p.splits; s++) {
    float ls = part_ml[(base + s) * 2 + 1];
    if (ls == 0) continue;  // a split past the row's last position
    float c = exp(part_ml[(base + s) * 2] - m);
    l += ls * c;
    acc += part_o[(base + s) * p.dv + tid] * c;
  }
  float r = acc / l;
  if (p.has_gate) r *= 1.0f / (1.0f + exp(-gate[row * p.dv + tid]));
  out[row * p.dv + tid] = r;
}

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

template <uint Bits>
kernel void sdpa_split_q(device const float* q [[buffer(0)]],
                         device const uint* kq [[buffer(1)]],
                         device const uint* vq [[buffer(2)]],
                         constant SdpaParams& p [[buffer(5)]],
                         device const half* k_scales [[buffer(6)]],
                         device const half* k_biases [[buffer(7)]],
                         device const half* v_scales [[buffer(8)]],
                         device const half* v_biases [[buffer(9)]],
                         constant uint& group [[buffer(10)]],
                         constant SplitParams& sp [[buffer(11)]],
                         device float* out_o [[buffer(12)]],
                         device float* out_ml [[buffer(13)]],
                         uint3 tg [[threadgroup_position_in_grid]],
                         uint tid [[thread_index_in_threadgroup]],
                         uint sg [[simdgroup_index_in_threadgroup]],
                         uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part_m[kSimdgroups];
  threadgroup float part_l[kSimdgroups];
  threadgroup float part_o[kSimdgroups][kMaxDim];
  sdpa_split_rows(q, QuantRows<Bits>{kq, k_scales, k_biases, p.k_stride, group},
                  QuantRows<Bits>{vq, v_scales, v_biases, p.v_stride, group}, p, sp, out_o, out_ml, tg, tid, sg,
                  lane, part_m, part_l, part_o);
}

template [[host_name("sdpa_split_q8")]] [[kernel]] decltype(sdpa_split_q<8>) sdpa_split_q<8>;
template [[host_name("sdpa_split_q4")]] [[kernel]] decltype(sdpa_split_q<4>) sdpa_split_q<4>;

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


// gpt-oss's attention: token t (position pos0+t) sees positions
// max(0, pos0+t-window+1)..pos0+t (all of them with window 0), and head h's
// softmax denominator also holds exp(sinks[h]), a logit with no value.
// Buffers as sdpa_* with 3: sinks [heads] (no gate) and 11: the window;
// launch as sdpa. The sink joins the span's merged max and sum last.
template <typename K, typename V>
inline void sdpa_sinks_rows(device const float* q, K k, V v, device const float* sinks, device float* out,
                            constant SdpaParams& p, uint window, uint2 tg, uint tid, uint sg, uint lane,
                            threadgroup float* part_m, threadgroup float* part_l,
                            threadgroup float (*part_o)[kMaxDim]) {
  uint pos = p.pos0 + tg.y;
  uint first = (window > 0 && pos + 1 > window) ? pos + 1 - window : 0;
  float m, l, acc;
  sdpa_span(q, k, v, p, tg, first, pos + 1, tid, sg, lane, part_m, part_l, part_o, m, l, acc);
  if (tid < p.dv) {
    float s = sinks[tg.x], top = max(m, s), c = exp(m - top);
    out[(tg.y * p.heads + tg.x) * p.dv + tid] = acc * c / (l * c + exp(s - top));
  }
}

template <typename T>
kernel void sdpa_sinks(device const float* q [[buffer(0)]],
                       device const T* k [[buffer(1)]],
                       device const T* v [[buffer(2)]],
                       device const float* sinks [[buffer(3)]],
                       device float* out [[buffer(4)]],
                       constant SdpaParams& p [[buffer(5)]],
                       constant uint& window [[buffer(11)]],
                       uint2 tg [[threadgroup_position_in_grid]],
                       uint tid [[thread_index_in_threadgroup]],
                       uint sg [[simdgroup_index_in_threadgroup]],
                       uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part_m[kSimdgroups];
  threadgroup float part_l[kSimdgroups];
  threadgroup float part_o[kSimdgroups][kMaxDim];
  sdpa_sinks_rows(q, DenseRows<T>{k, p.k_stride}, DenseRows<T>{v, p.v_stride}, sinks, out, p, window, tg, tid, sg,
                  lane, part_m, part_l, part_o);
}

template [[host_name("sdpa_sinks_f32")]] [[kernel]] decltype(sdpa_sinks<float>) sdpa_sinks<float>;
template [[host_name("sdpa_sinks_f16")]] [[kernel]] decltype(sdpa_sinks<half>) sdpa_sinks<half>;

template <uint Bits>
kernel void sdpa_sinks_q(device const float* q [[buffer(0)]],
                         device const uint* kq [[buffer(1)]],
                         device const uint* vq [[buffer(2)]],
                         device const float* sinks [[buffer(3)]],
                         device float* out [[buffer(4)]],
                         constant SdpaParams& p [[buffer(5)]],
                         device const half* k_scales [[buffer(6)]],
                         device const half* k_biases [[buffer(7)]],
                         device const half* v_scales [[buffer(8)]],
                         device const half* v_biases [[buffer(9)]],
                         constant uint& group [[buffer(10)]],
                         constant uint& window [[buffer(11)]],
                         uint2 tg [[threadgroup_position_in_grid]],
                         uint tid [[thread_index_in_threadgroup]],
                         uint sg [[simdgroup_index_in_threadgroup]],
                         uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float part_m[kSimdgroups];
  threadgroup float part_l[kSimdgroups];
  threadgroup float part_o[kSimdgroups][kMaxDim];
  sdpa_sinks_rows(q, QuantRows<Bits>{kq, k_scales, k_biases, p.k_stride, group},
                  QuantRows<Bits>{vq, v_scales, v_biases, p.v_stride, group}, sinks, out, p, window, tg, tid, sg,
                  lane, part_m, part_l, part_o);
}

template [[host_name("sdpa_sinks_q8")]] [[kernel]] decltype(sdpa_sinks_q<8>) sdpa_sinks_q<8>;
template [[host_name("sdpa_sinks_q4")]] [[kernel]] decltype(sdpa_sinks_q<4>) sdpa_sinks_q<4>;
