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
