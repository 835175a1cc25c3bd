// Softmax and MoE routing. Launch for both: one threadgroup per row (token),
// threads (256,1,1), groups (rows,1,1).
#include <metal_stdlib>
using namespace metal;

constant constexpr uint kThreads = 256;
constant constexpr uint kMaxExperts = 1024;
constant constexpr uint kMaxGroups = 32;

// threadgroup_reduce_max / _sum give every thread the threadgroup's max/sum.
// scratch holds 9 floats (8 SIMD-groups + the result).
inline float threadgroup_reduce_max(float v, threadgroup float* scratch, uint sg, uint lane) {
  v = simd_max(v);
  if (lane == 0) scratch[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0) {
    float t = simd_max(lane < kThreads / 32 ? scratch[lane] : -INFINITY);
    if (lane == 0) scratch[8] = t;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float r = scratch[8];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return r;
}

inline float threadgroup_reduce_sum(float v, threadgroup float* scratch, uint sg, uint lane) {
  v = simd_sum(v);
  if (lane == 0) scratch[sg] = v;
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (sg == 0) {
    float t = simd_sum(lane < kThreads / 32 ? scratch[lane] : 0.0f);
    if (lane == 0) scratch[8] = t;
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  float r = scratch[8];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  return r;
}

// softmax_rows: in place, stable softmax of each row of n values.
kernel void softmax_rows(device float* x [[buffer(0)]],
                         constant uint& n [[buffer(1)]],
                         uint row [[threadgroup_position_in_grid]],
                         uint tid [[thread_index_in_threadgroup]],
                         uint sg [[simdgroup_index_in_threadgroup]],
                         uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float scratch[9];
  device float* r = x + row * n;
  float m = -INFINITY;
  for (uint i = tid; i < n; i += kThreads) m = max(m, r[i]);
  m = threadgroup_reduce_max(m, scratch, sg, lane);
  float s = 0;
  for (uint i = tid; i < n; i += kThreads) {
    float e = exp(r[i] - m);
    r[i] = e;
    s += e;
  }
  s = threadgroup_reduce_sum(s, scratch, sg, lane);
  for (uint i = tid; i < n; i += kThreads) r[i] /= s;
}

struct RouteParams {
  uint experts;      // router logits per token (at most 1024)
  uint topk;
  uint sigmoid;      // sigmoid scores instead of softmax
  uint has_bias;     // add bias[e] for choosing (weights use the raw scores)
  uint groups;       // > 1: choose among the best topk_groups of groups (at most 32)
  uint topk_groups;
  uint normalize;    // rescale the chosen weights to sum to one
  float scale;       // multiplies the final weights
};

// route: per token, scores = softmax|sigmoid(logits), choose topk experts by
// scores+bias (restricted to the best groups when grouped, a group scored by
// the sum of its two best), weights = the chosen scores, optionally
// normalised, times scale. Ties go to the lower expert id.
// ids and weights are [tokens, topk].
kernel void route(device const float* logits [[buffer(0)]],
                  device const float* bias [[buffer(1)]],
                  device int* ids [[buffer(2)]],
                  device float* weights [[buffer(3)]],
                  constant RouteParams& p [[buffer(4)]],
                  uint row [[threadgroup_position_in_grid]],
                  uint tid [[thread_index_in_threadgroup]],
                  uint sg [[simdgroup_index_in_threadgroup]],
                  uint lane [[thread_index_in_simdgroup]]) {
  threadgroup float scores[kMaxExperts];
  threadgroup float choice[kMaxExperts];
  threadgroup float group_score[kMaxGroups];
  threadgroup float scratch[9];
  threadgroup float best_val[8];
  threadgroup uint best_idx[8];
  threadgroup int chosen;
  const uint E = p.experts;
  device const float* l = logits + row * E;

  // Scores.
  if (p.sigmoid) {
    for (uint i = tid; i < E; i += kThreads) scores[i] = 1.0f / (1.0f + exp(-l[i]));
  } else {
    float m = -INFINITY;
    for (uint i = tid; i < E; i += kThreads) m = max(m, l[i]);
    m = threadgroup_reduce_max(m, scratch, sg, lane);
    float s = 0;
    for (uint i = tid; i < E; i += kThreads) {
      scores[i] = exp(l[i] - m);
      s += scores[i];
    }
    s = threadgroup_reduce_sum(s, scratch, sg, lane);
    for (uint i = tid; i < E; i += kThreads) scores[i] /= s;
  }
  for (uint i = tid; i < E; i += kThreads) choice[i] = p.has_bias ? scores[i] + bias[i] : scores[i];
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // Group restriction: mask the experts of the groups that are not chosen.
  if (p.groups > 1) {
    uint per = E / p.groups;
    if (tid < p.groups) {
      float b1 = -INFINITY, b2 = -INFINITY;
      for (uint i = tid * per; i < (tid + 1) * per; i++) {
        float v = choice[i];
        if (v > b1) {
          b2 = b1;
          b1 = v;
        } else if (v > b2) {
          b2 = v;
        }
      }
      group_score[tid] = b1 + b2;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
      // Pick topk_groups groups; a picked group's score becomes +inf, so
      // the groups left finite are the ones to mask.
      for (uint k = 0; k < p.topk_groups; k++) {
        uint b = 0;
        float bv = -INFINITY;
        for (uint g = 0; g < p.groups; g++) {
          if (group_score[g] != INFINITY && (group_score[g] > bv || bv == -INFINITY)) {
            bv = group_score[g];
            b = g;
          }
        }
        group_score[b] = INFINITY;
      }
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (uint i = tid; i < E; i += kThreads)
      if (group_score[i / per] != INFINITY) choice[i] = -1e30f;
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }

  // Top-k by repeated argmax; a chosen expert becomes -inf.
  float sum = 0;
  for (uint k = 0; k < p.topk; k++) {
    float bv = -INFINITY;
    uint bi = 0xffffffffu;
    for (uint i = tid; i < E; i += kThreads) {
      float v = choice[i];
      if (v > bv || (v == bv && i < bi)) {
        bv = v;
        bi = i;
      }
    }
    float mv = simd_max(bv);
    uint mi = simd_min(bv == mv ? bi : 0xffffffffu);
    if (lane == 0) {
      best_val[sg] = mv;
      best_idx[sg] = mi;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (tid == 0) {
      float v = best_val[0];
      uint b = best_idx[0];
      for (uint s = 1; s < kThreads / 32; s++) {
        if (best_val[s] > v || (best_val[s] == v && best_idx[s] < b)) {
          v = best_val[s];
          b = best_idx[s];
        }
      }
      chosen = int(b);
      choice[b] = -INFINITY;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
    float w = scores[chosen];
    sum += w;
    if (tid == 0) {
      ids[row * p.topk + k] = chosen;
      weights[row * p.topk + k] = w;
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  if (tid == 0) {
    float norm = p.normalize ? sum + (p.sigmoid ? 1e-20f : 0.0f) : 1.0f;
    for (uint k = 0; k < p.topk; k++) weights[row * p.topk + k] = weights[row * p.topk + k] / norm * p.scale;
  }
}
